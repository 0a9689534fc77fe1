using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

/// <summary>
/// Reads page data from a page file of a checkpoint. Offsets are file offsets, as returned by
/// <see cref="PageFileWriter.Append"/> and recorded in page runs. Thread-safe (pread).
/// </summary>
public sealed class PageFileReader : IDisposable
{
    private readonly SafeFileHandle _handle;
    private bool _reflinks = true;

    // Compressed runs: the block last decompressed (later checkpoints keep slices of a block, read
    // one after the other), the buffer it was read into, and the file opened for direct reads.
    private readonly object _blockLock = new();
    private byte[]? _block;
    private ulong _blockOffset = ulong.MaxValue;
    private Schema.Codec _blockCodec;
    private int _blockHeld;
    private PageBuffer? _stored;
    private byte[]? _plain; // an encrypted compressed block, decrypted
    private SafeFileHandle? _direct;
    private readonly ImageKey? _key;
    // Where its data is still arriving, what a read waits for (PageArrivals); null: it is whole.
    private readonly IPageArrivals? _arrivals;

    internal PageFileReader(SafeFileHandle handle, string path, ulong dataLength, ImageKey? key = null)
    {
        _handle = handle;
        Path = path;
        DataLength = dataLength;
        _key = key;
        _arrivals = PageArrivals.Current;
    }

    internal static PageFileReader Open(string path, ImageLimits limits, ImageKey? key = null)
    {
        SafeFileHandle handle = ImageFiles.OpenRegular(path, out long length);
        try
        {
            Span<byte> head = stackalloc byte[PageFileHeader.Length];
            head = head[..(int)Math.Min(length, head.Length)];
            ImageFiles.ReadExactly(handle, head, 0, path);
            ulong dataLength = PageFileHeader.Validate(head, length, limits, path);
            return new PageFileReader(handle, path, dataLength, key);
        }
        catch
        {
            handle.Dispose();
            throw;
        }
    }

    /// <summary>The page file's path, for messages.</summary>
    public string Path { get; }

    /// <summary>Bytes of page data after the header page.</summary>
    public ulong DataLength { get; }

    /// <summary>Whether all of its data is on this disk (not still arriving, <see cref="PageArrivals"/>).</summary>
    public bool IsWhole => _arrivals is null;

    /// <summary>Fills <paramref name="destination"/> with the data at file offset <paramref name="offset"/>.</summary>
    /// <exception cref="ImageFormatException">The range lies outside the page data.</exception>
    public void Read(ulong offset, Span<byte> destination)
    {
        if (!Contains(offset, (ulong)destination.Length))
        {
            throw OutOfRange(offset, (ulong)destination.Length);
        }
        Await(offset, (ulong)destination.Length);
        ImageFiles.ReadExactly(_handle, destination, (long)offset, Path);
    }

    /// <summary>
    /// Returns once bytes [offset, offset + length) of the file are in it: at once, unless the file is
    /// still arriving (<see cref="PageArrivals"/>). For a read that does not go through this reader
    /// (the restored process reading its page file itself).
    /// </summary>
    /// <exception cref="ImageFormatException">They will never arrive.</exception>
    public void Await(ulong offset, ulong length) => _arrivals?.Await(Path, offset, length);

    /// <summary>If the file is still arriving: asks for these byte ranges, to be read soon, without waiting (<see cref="IPageArrivals.Prefetch"/>).</summary>
    public void Prefetch(IReadOnlyList<(ulong Offset, ulong Length)> ranges)
    {
        if (ranges.Count > 0)
            _arrivals?.Prefetch(Path, ranges);
    }

    /// <summary>
    /// Like <see cref="Read"/>, with direct I/O where the file system has it (no page cache to fill):
    /// <paramref name="offset"/> and the length a multiple of the page size, <paramref name="destination"/> page-aligned.
    /// </summary>
    public void ReadDirect(ulong offset, Span<byte> destination)
    {
        if (!Contains(offset, (ulong)destination.Length))
        {
            throw OutOfRange(offset, (ulong)destination.Length);
        }
        bool aligned = offset % ImageFormat.PageSize == 0 && destination.Length % ImageFormat.PageSize == 0 && PageBuffer.IsAligned(destination);
        Await(offset, (ulong)destination.Length);
        SafeFileHandle handle;
        lock (_blockLock)
            handle = aligned ? DirectHandle() : _handle;
        ImageFiles.ReadExactly(handle, destination, (long)offset, Path);
    }

    /// <summary>Reads a run like <see cref="Read"/> and checks each page against its recorded XXH3-64.</summary>
    /// <exception cref="ImageFormatException">The range is outside the data or a page's checksum differs.</exception>
    public void ReadRun(ulong offset, Span<byte> destination, IReadOnlyList<ulong> pageXxh3)
    {
        Read(offset, destination);
        CheckRun(offset, destination, pageXxh3);
    }

    /// <summary>Checks the pages of the run at <paramref name="offset"/>, read into <paramref name="data"/>, against their recorded XXH3-64.</summary>
    /// <exception cref="ImageFormatException">A page's checksum differs.</exception>
    internal void CheckRun(ulong offset, ReadOnlySpan<byte> data, IReadOnlyList<ulong> pageXxh3)
    {
        int bad = PageHashes.FirstMismatch(data, pageXxh3);
        if (bad >= 0)
        {
            throw ImageErrors.Format(Path, $"page {bad} of the run at offset {offset} ({data.Length} bytes) fails its checksum");
        }
    }

    /// <summary>
    /// Puts <paramref name="length"/> bytes of page data at <paramref name="offset"/> into
    /// <paramref name="destination"/> at <paramref name="destinationOffset"/> by sharing the blocks
    /// (FICLONERANGE: btrfs, xfs) instead of writing them. False, having done nothing, where the file
    /// system cannot; the caller writes them then.
    /// </summary>
    public bool CloneTo(ulong offset, int length, SafeFileHandle destination, long destinationOffset)
    {
        if (!_reflinks || length <= 0 || length % ImageFormat.PageSize != 0 || destinationOffset % ImageFormat.PageSize != 0 || !Contains(offset, (ulong)length))
            return false;
        Await(offset, (ulong)length);
        if (Reflink.TryClone(_handle, offset, destination, (ulong)destinationOffset, (ulong)length))
            return true;
        _reflinks = false; // not here (another file system, no reflinks): writes from now on
        return false;
    }

    /// <summary>Whether <paramref name="pages"/> pages at <paramref name="offset"/> lie inside the data.</summary>
    public bool Holds(ulong offset, ulong pages) =>
        pages > 0 && pages <= int.MaxValue / ImageFormat.PageSize && Contains(offset, pages * ImageFormat.PageSize);

    /// <summary>
    /// Reads the pages of <paramref name="run"/> (compressed or not) into <paramref name="destination"/>
    /// (its <c>Count</c> pages) and checks each against its checksum.
    /// </summary>
    /// <exception cref="ImageFormatException">Outside the data, not a block of its codec, or a page's checksum differs.</exception>
    public void ReadRun(Schema.PageRun run, Span<byte> destination)
    {
        if (!run.IsBlock)
        {
            ReadRun(run.FileOffset, destination, run.PageXxh3);
            return;
        }
        ulong pages = run.Skip + run.Count;
        if (pages > PageCodec.MaxPages || (ulong)destination.Length != run.Count * ImageFormat.PageSize || run.StoredLength == 0
            || (run.Codec == Schema.Codec.None && run.StoredLength > PageCodec.MaxPages * ImageFormat.PageSize))
            throw ImageErrors.Format(Path, $"{Describe(run)} run at offset {run.FileOffset} ({run.Skip} + {run.Count} pages, {run.StoredLength} bytes) is malformed");
        if (run.Encrypted && _key is null)
            throw ImageErrors.Format(Path, $"holds encrypted pages (at offset {run.FileOffset}), and no key was given to read them");
        // Blocks are padded to whole pages, and read whole.
        int padded = ImageFormat.WholePages((int)run.StoredLength);
        if (!Contains(run.FileOffset, (ulong)padded))
            throw OutOfRange(run.FileOffset, (ulong)padded);
        Await(run.FileOffset, (ulong)padded);
        lock (_blockLock)
        {
            if (_block is null || _blockOffset != run.FileOffset || _blockCodec != run.Codec)
            {
                _block ??= new byte[PageCodec.MaxPages * ImageFormat.PageSize];
                _blockOffset = ulong.MaxValue;
                // Buffers kept for the next block: fresh memory is slow to touch on VMs (docs/kernel.md §13).
                // Read with direct I/O where the file system has it (through the page cache, every
                // page of it would be fresh memory too).
                if (_stored is null || _stored.Length < padded)
                    _stored = new PageBuffer(Math.Max(padded, ImageFormat.WholePages(PageCodec.Bound(run.Codec, PageCodec.MaxPages * ImageFormat.PageSize))));
                ImageFiles.ReadExactly(DirectHandle(), _stored.Span[..padded], (long)run.FileOffset, Path);
                ReadOnlySpan<byte> stored = _stored.Span[..(int)run.StoredLength];
                if (run.Encrypted)
                {
                    // Decrypted where the pages go (no codec), or where the codec reads them from.
                    if (run.Codec != Schema.Codec.None && (_plain is null || _plain.Length < stored.Length))
                        _plain = new byte[_stored.Length];
                    Span<byte> plain = run.Codec == Schema.Codec.None ? _block.AsSpan(0, stored.Length) : _plain.AsSpan(0, stored.Length);
                    if (!BlockCipher.TryOpen(_key!, stored, plain, run.Nonce.Span, run.Tag.Span))
                        throw ImageErrors.Format(Path, $"the encrypted block at offset {run.FileOffset} ({run.StoredLength} bytes) fails its authentication (AES-GCM tag): damaged, or not encrypted with key {_key!.Id}");
                    stored = plain;
                }
                _blockHeld = run.Codec == Schema.Codec.None ? stored.Length : PageCodec.Decompress(run.Codec, stored, _block);
                (_blockOffset, _blockCodec) = (run.FileOffset, run.Codec);
            }
            // A run may be a slice of the block: it holds at least the pages up to the run's last.
            if (_blockHeld < (int)pages * ImageFormat.PageSize || _blockHeld % ImageFormat.PageSize != 0)
                throw ImageErrors.Format(Path, $"the {Describe(run)} block at offset {run.FileOffset} ({run.StoredLength} bytes) does not decompress to {pages} pages or more");
            _block.AsSpan((int)run.Skip * ImageFormat.PageSize, destination.Length).CopyTo(destination);
        }
        int bad = PageHashes.FirstMismatch(destination, run.PageXxh3);
        if (bad >= 0)
            throw ImageErrors.Format(Path, $"page {bad} of the {Describe(run)} run at offset {run.FileOffset} (from page {run.Skip}) fails its checksum");
    }

    private static string Describe(Schema.PageRun run) =>
        run.Encrypted ? run.Codec == Schema.Codec.None ? "encrypted" : $"encrypted {PageCodec.Name(run.Codec)}" : PageCodec.Name(run.Codec);

    /// <summary>The file opened again with O_DIRECT for reading compressed blocks (or the same handle where that cannot be).</summary>
    private SafeFileHandle DirectHandle()
    {
        if (_direct is null && _arrivals is not null)
            _direct = _handle; // written through the page cache as it arrives: read from there
        if (_direct is null)
        {
            var again = ImageFiles.OpenRegular(Path, out _);
            if (PageFileWriter.TryEnableDirectIo(again)) // (which AMBER_NO_DIRECT_IO=1 turns off)
                _direct = again;
            else
            {
                again.Dispose();
                _direct = _handle;
            }
        }
        return _direct;
    }

    /// <summary>Whether <paramref name="run"/> (compressed or not) lies inside the data and its pages hash to their checksums.</summary>
    public bool VerifyRun(Schema.PageRun run)
    {
        if (!run.IsBlock)
            return VerifyRun(run.FileOffset, run.PageXxh3);
        if ((ulong)run.PageXxh3.Count != run.Count || run.Count == 0 || run.Skip + run.Count > PageCodec.MaxPages)
            return false;
        var pages = System.Buffers.ArrayPool<byte>.Shared.Rent((int)run.Count * ImageFormat.PageSize);
        try
        {
            ReadRun(run, pages.AsSpan(0, (int)run.Count * ImageFormat.PageSize));
            return true;
        }
        catch (ImageFormatException)
        {
            return false;
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(pages);
        }
    }

    /// <summary>Whether <paramref name="run"/>'s stored data lies inside the data.</summary>
    public bool Holds(Schema.PageRun run) =>
        !run.IsBlock ? Holds(run.FileOffset, run.Count) : run.StoredLength > 0 && Contains(run.FileOffset, run.StoredLength);

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
            Await(offset + done, (ulong)n);
            ImageFiles.ReadExactly(_handle, buffer.AsSpan(0, n), (long)(offset + done), Path);
            int first = (int)(done / ImageFormat.PageSize);
            if (PageHashes.FirstMismatch(buffer.AsSpan(0, n), [.. pageXxh3.Skip(first).Take(n / ImageFormat.PageSize)]) >= 0)
            {
                return false;
            }
        }
        return true;
    }

    /// <summary>Closes the file (and the one opened for direct reads).</summary>
    public void Dispose()
    {
        if (_direct is not null && _direct != _handle)
            _direct.Dispose();
        _handle.Dispose();
    }

    private bool Contains(ulong offset, ulong length) =>
        offset >= PageFileHeader.Length
        && offset - PageFileHeader.Length <= DataLength
        && length <= DataLength - (offset - PageFileHeader.Length);

    private ImageFormatException OutOfRange(ulong offset, ulong length) =>
        ImageErrors.Format(Path, $"range at offset {offset} ({length} bytes) lies outside the page data [{PageFileHeader.Length}, {PageFileHeader.Length + DataLength})");
}
