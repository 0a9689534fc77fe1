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

    /// <summary>Reads a run like <see cref="Read"/> and checks each page against its recorded XXH3-64.</summary>
    /// <exception cref="ImageFormatException">The range is outside the data or a page's checksum differs.</exception>
    public void ReadRun(ulong offset, Span<byte> destination, IReadOnlyList<ulong> pageXxh3)
    {
        Read(offset, destination);
        int bad = PageHashes.FirstMismatch(destination, pageXxh3);
        if (bad >= 0)
        {
            throw ImageErrors.Format(Path, $"page {bad} of the run at offset {offset} ({destination.Length} bytes) fails its checksum");
        }
    }

    /// <summary>
    /// Puts <paramref name="length"/> bytes of page data at <paramref name="offset"/> into
    /// <paramref name="destination"/> at <paramref name="destinationOffset"/> by sharing the blocks
    /// (FICLONERANGE: btrfs, xfs) instead of writing them. False, having done nothing, where the file
    /// system cannot; the caller writes them then.
    /// </summary>
    public unsafe bool CloneTo(ulong offset, int length, SafeFileHandle destination, long destinationOffset)
    {
        if (!_reflinks || length <= 0 || length % ImageFormat.PageSize != 0 || destinationOffset % ImageFormat.PageSize != 0 || !Contains(offset, (ulong)length))
            return false;
        bool added = false, addedDestination = false;
        try
        {
            _handle.DangerousAddRef(ref added);
            destination.DangerousAddRef(ref addedDestination);
            var range = new Amber.Native.FileCloneRange
            {
                src_fd = _handle.DangerousGetHandle(), src_offset = offset, src_length = (ulong)length, dest_offset = (ulong)destinationOffset,
            };
            if (Amber.Native.Interop.Ioctl((int)destination.DangerousGetHandle(), Amber.Native.Interop.FICLONERANGE, &range) == 0)
                return true;
            _reflinks = false; // not here (another file system, no reflinks): writes from now on
            return false;
        }
        finally
        {
            if (added)
                _handle.DangerousRelease();
            if (addedDestination)
                destination.DangerousRelease();
        }
    }

    private bool _reflinks = true;

    /// <summary>Whether <paramref name="pages"/> pages at <paramref name="offset"/> lie inside the data.</summary>
    public bool Holds(ulong offset, ulong pages) =>
        pages > 0 && pages <= int.MaxValue / ImageFormat.PageSize && Contains(offset, pages * ImageFormat.PageSize);

    /// <summary>Whether the run at <paramref name="offset"/> lies inside the data and its pages hash to <paramref name="pageXxh3"/>.</summary>
    public bool VerifyRun(ulong offset, IReadOnlyList<ulong> pageXxh3)
    {
        ulong length = (ulong)pageXxh3.Count * ImageFormat.PageSize;
        if (pageXxh3.Count == 0 || !Contains(offset, length) || length > int.MaxValue)
        {
            return false;
        }
        var buffer = new byte[(int)Math.Min(length, 4UL << 20)];
        for (ulong done = 0; done < length; done += (ulong)buffer.Length)
        {
            int n = (int)Math.Min((ulong)buffer.Length, length - done);
            ImageFiles.ReadExactly(_handle, buffer.AsSpan(0, n), (long)(offset + done), Path);
            int first = (int)(done / ImageFormat.PageSize);
            if (PageHashes.FirstMismatch(buffer.AsSpan(0, n), [.. pageXxh3.Skip(first).Take(n / ImageFormat.PageSize)]) >= 0)
            {
                return false;
            }
        }
        return true;
    }

    public void Dispose() => _handle.Dispose();

    private bool Contains(ulong offset, ulong length) =>
        offset >= PageFileHeader.Length
        && offset - PageFileHeader.Length <= DataLength
        && length <= DataLength - (offset - PageFileHeader.Length);

    private ImageFormatException OutOfRange(ulong offset, ulong length) =>
        ImageErrors.Format(Path, $"range at offset {offset} ({length} bytes) lies outside the page data [{PageFileHeader.Length}, {PageFileHeader.Length + DataLength})");
}
