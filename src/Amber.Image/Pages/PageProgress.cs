namespace Amber.Image;

/// <summary>
/// How far the operation of this process has come, for a progress display: the bytes of image files
/// read and of page data written so far (counted where every read and append of the image layer
/// passes), the bytes the operation expects to move where it knows them, and the phase it is in.
/// Process-wide and lock-free: an operation is one per process, and counting costs one atomic add per
/// read or append, not per page.
/// </summary>
public static class PageProgress
{
    private static long _read, _written, _expected;
    private static volatile string _phase = "";

    /// <summary>Bytes of image files read so far.</summary>
    public static long BytesRead => Interlocked.Read(ref _read);

    /// <summary>Bytes of page data written so far (as stored: compressed where it is).</summary>
    public static long BytesWritten => Interlocked.Read(ref _written);

    /// <summary>The bytes the operation expects to read or write in all; 0 when it cannot know.</summary>
    public static long Expected
    {
        get => Interlocked.Read(ref _expected);
        set => Interlocked.Exchange(ref _expected, value);
    }

    /// <summary>The phase the operation is in (or, from a phase trace, the one it finished last).</summary>
    public static string Phase
    {
        get => _phase;
        set => _phase = value;
    }

    /// <summary>Counts bytes of image files read (by amber, or by a process amber has read them for it).</summary>
    public static void Read(long bytes) => Interlocked.Add(ref _read, bytes);

    internal static void Written(long bytes) => Interlocked.Add(ref _written, bytes);
}
