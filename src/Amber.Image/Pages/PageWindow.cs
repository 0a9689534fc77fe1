namespace Amber.Image;

/// <summary>
/// Reads of a page file in an order known in advance, at growing offsets: what a merge does, reading
/// the pages its runs keep in each checkpoint of a chain in address order — the order each checkpoint
/// wrote them in. The file is read with direct I/O in spans of up to <see cref="SpanBytes"/> that
/// take in the planned pieces ahead, and the small gaps between them (pages a later checkpoint
/// replaced): tens of thousands of small reads through the page cache (fresh memory, slow to touch on
/// VMs, docs/kernel.md §13) become a few hundred large ones. A read out of the planned order is read alone.
/// Not thread-safe.
/// </summary>
public sealed class PageWindow
{
    /// <summary>The most one direct read takes in, and the least a window buffer holds: 2 MiB.</summary>
    public const int SpanBytes = 2 << 20;
    private const ulong MaxGap = 128 << 10;

    private readonly (ulong Offset, ulong Length)[] _plan;
    private readonly PageBuffer _window;
    private int _next; // the first planned piece not wholly before the window
    private ulong _start, _end; // the file offsets the window holds

    /// <param name="file">The page file read.</param>
    /// <param name="plan">The pieces that will be read (file offset, length), in the order they will be.</param>
    /// <param name="window">Where spans are read into: <see cref="SpanBytes"/>, this window's alone (it may serve a later file after this one).</param>
    public PageWindow(PageFileReader file, IEnumerable<(ulong Offset, ulong Length)> plan, PageBuffer window)
    {
        if (window.Length < SpanBytes)
            throw new ArgumentException($"a window of {SpanBytes} bytes or more is needed, not {window.Length}", nameof(window));
        File = file;
        _plan = [.. plan];
        _window = window;
    }

    /// <summary>The page file read.</summary>
    public PageFileReader File { get; }

    /// <summary>Fills <paramref name="destination"/> with the data at file offset <paramref name="offset"/>.</summary>
    /// <exception cref="ImageFormatException">The range lies outside the page data.</exception>
    public void Read(ulong offset, Span<byte> destination)
    {
        ulong end = offset + (ulong)destination.Length;
        if (offset < _start || end > _end)
        {
            if (destination.Length > SpanBytes || offset % ImageFormat.PageSize != 0 || destination.Length % ImageFormat.PageSize != 0)
            {
                File.ReadDirect(offset, destination); // large enough alone (direct where aligned)
                return;
            }
            Load(offset, end);
        }
        _window.Span.Slice((int)(offset - _start), destination.Length).CopyTo(destination);
    }

    /// <summary>Reads a run like <see cref="Read"/> and checks each page against its recorded XXH3-64.</summary>
    /// <exception cref="ImageFormatException">The range is outside the data or a page's checksum differs.</exception>
    public void ReadRun(ulong offset, Span<byte> destination, IReadOnlyList<ulong> pageXxh3)
    {
        Read(offset, destination);
        File.CheckRun(offset, destination, pageXxh3);
    }

    /// <summary>Reads [offset, end) and as many of the planned pieces after it as fit in a span, small gaps and all.</summary>
    private void Load(ulong offset, ulong end)
    {
        while (_next < _plan.Length && _plan[_next].Offset + _plan[_next].Length <= offset)
            _next++;
        ulong stop = end;
        for (int i = _next; i < _plan.Length; i++)
        {
            var (at, length) = _plan[i];
            if (at + length <= stop)
                continue;
            if (at > stop + MaxGap || at + length - offset > SpanBytes)
                break;
            stop = at + length; // (a piece begun before offset is read from offset on)
        }
        // Never past the data: what the plan says is checked by the reads that use it.
        ulong held = Math.Max(end, Math.Min(stop, PageFileHeader.Length + File.DataLength));
        _start = _end = 0;
        File.ReadDirect(offset, _window.Span[..(int)(held - offset)]);
        (_start, _end) = (offset, held);
    }
}
