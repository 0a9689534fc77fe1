using System.IO.Hashing;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

/// <summary>
/// Reads page data from a page file of a checkpoint. Offsets are file offsets, as returned by
/// <see cref="PageFileWriter.Append"/> and recorded in page runs. Thread-safe (pread).
/// </summary>
public sealed class PageFileReader : IDisposable
{
    private readonly SafeFileHandle _handle;

    internal PageFileReader(SafeFileHandle handle, string path, ulong dataLength)
    {
        _handle = handle;
        Path = path;
        DataLength = dataLength;
    }

    internal static PageFileReader Open(string path, ImageLimits limits)
    {
        SafeFileHandle handle = ImageFiles.OpenRegular(path, out long length);
        try
        {
            Span<byte> head = stackalloc byte[PageFileHeader.Length];
            head = head[..(int)Math.Min(length, head.Length)];
            ImageFiles.ReadExactly(handle, head, 0, path);
            ulong dataLength = PageFileHeader.Validate(head, length, limits, path);
            return new PageFileReader(handle, path, dataLength);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    public string Path { get; }

    /// <summary>Bytes of page data after the header page.</summary>
    public ulong DataLength { get; }

    /// <summary>Fills <paramref name="destination"/> with the data at file offset <paramref name="offset"/>.</summary>
    /// <exception cref="ImageFormatException">The range lies outside the page data.</exception>
    public void Read(ulong offset, Span<byte> destination)
    {
        if (!Contains(offset, (ulong)destination.Length))
        {
            throw OutOfRange(offset, (ulong)destination.Length);
        }
        ImageFiles.ReadExactly(_handle, destination, (long)offset, Path);
    }

    /// <summary>Reads a run like <see cref="Read"/> and checks it against its recorded XXH3-64.</summary>
    /// <exception cref="ImageFormatException">The range is outside the data or the checksum differs.</exception>
    public void ReadRun(ulong offset, Span<byte> destination, ulong expectedXxh3)
    {
        Read(offset, destination);
        if (!VerifyRun(destination, expectedXxh3))
        {
            throw ImageErrors.Format(Path, $"page run at offset {offset} ({destination.Length} bytes) fails its checksum");
        }
    }

    /// <summary>Whether the run at <paramref name="offset"/> lies inside the data and hashes to <paramref name="expectedXxh3"/>.</summary>
    public bool VerifyRun(ulong offset, ulong length, ulong expectedXxh3) =>
        Contains(offset, length) && FileHashing.Hash(_handle, (long)offset, (long)length, Path) == expectedXxh3;

    /// <summary>Whether pages already in memory hash to their recorded XXH3-64.</summary>
    public static bool VerifyRun(ReadOnlySpan<byte> pages, ulong expectedXxh3) =>
        XxHash3.HashToUInt64(pages) == expectedXxh3;

    public void Dispose() => _handle.Dispose();

    private bool Contains(ulong offset, ulong length) =>
        offset >= PageFileHeader.Length
        && offset - PageFileHeader.Length <= DataLength
        && length <= DataLength - (offset - PageFileHeader.Length);

    private ImageFormatException OutOfRange(ulong offset, ulong length) =>
        ImageErrors.Format(Path, $"range at offset {offset} ({length} bytes) lies outside the page data [{PageFileHeader.Length}, {PageFileHeader.Length + DataLength})");
}
