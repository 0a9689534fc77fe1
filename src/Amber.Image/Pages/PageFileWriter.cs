using System.IO.Hashing;
using Amber.Image.Schema;
using Amber.Native;
using Google.Protobuf;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

/// <summary>
/// Appends page data to a page file of a <see cref="CheckpointWriter"/>. Each append lands
/// page-aligned at the returned offset so a restorer can pread() it straight into place. Owned by
/// the checkpoint writer: <see cref="CheckpointWriter.Commit(Schema.Manifest)"/> completes it and
/// <see cref="CheckpointWriter.Dispose"/> closes it. Not thread-safe; use one writer per thread.
/// </summary>
public sealed class PageFileWriter
{
    // Appends below SmallAppend are gathered into one pooled buffer, so runs of single pages cost
    // a memcpy instead of a pwrite each; larger appends go to the file directly, without a copy.
    private const int SmallAppend = 64 * 1024;
    internal const int GatherLength = 1024 * 1024;

    private readonly SafeFileHandle _handle;
    private readonly XxHash3 _dataHash = new();
    private readonly bool _direct;
    private PageBuffer? _gather;
    private int _gathered;
    private long _fileEnd = PageFileHeader.Length;
    private bool _faulted;
    private bool _closed;

    private readonly ImageKey? _key;

    // gather: a buffer for the small appends, touched already (CheckpointWriter.Prefault), else one is made at the first.
    internal PageFileWriter(SafeFileHandle handle, string path, string fileName, ImageKey? key = null, bool directIo = true, PageBuffer? gather = null)
    {
        _handle = handle;
        Path = path;
        FileName = fileName;
        _key = key;
        _gather = gather;
        _direct = directIo && TryEnableDirectIo(handle);
    }

    /// <summary>
    /// Whether the file is encrypted (its checkpoint is): then pages go in only as blocks, through
    /// <see cref="Store"/> or <see cref="StoreRuns"/>, never in clear.
    /// </summary>
    public bool Encrypted => _key is not null;

    /// <summary>The name of the file inside the checkpoint.</summary>
    public string FileName { get; }

    /// <summary>Where the file is being written (inside the temporary directory until commit).</summary>
    public string Path { get; }

    /// <summary>Bytes of page data appended so far.</summary>
    public ulong DataLength { get; private set; }

    /// <summary>
    /// Appends whole pages. Returns the file offset of the data (page-aligned, at least
    /// <see cref="ImageFormat.PageSize"/>) and the XXH3-64 of each page (<see cref="PageHashes"/>).
    /// </summary>
    /// <exception cref="ImageStoreException">The write failed (for example the disk is full).</exception>
    /// <exception cref="InvalidOperationException">The file is <see cref="Encrypted"/>.</exception>
    public (ulong Offset, ulong[] PageXxh3) Append(ReadOnlySpan<byte> pages)
    {
        var hashes = PageHashes.Of(pages);
        return (AppendData(pages), hashes);
    }

    /// <summary>
    /// Appends whole pages and returns their file offset; the caller checksums the pages itself (so
    /// that hashing can run on another thread than the writing).
    /// </summary>
    /// <exception cref="InvalidOperationException">The file is <see cref="Encrypted"/>.</exception>
    public ulong AppendData(ReadOnlySpan<byte> pages)
    {
        if (Encrypted)
        {
            throw new InvalidOperationException($"page file {Path} is encrypted: pages go in as blocks (Store), never in clear");
        }
        return AppendRaw(pages);
    }

    private ulong AppendRaw(ReadOnlySpan<byte> pages)
    {
        if (pages.Length % ImageFormat.PageSize != 0)
        {
            throw new ArgumentException($"length {pages.Length} is not a multiple of the page size {ImageFormat.PageSize}", nameof(pages));
        }
        ThrowIfNotWritable();
        ulong offset = PageFileHeader.Length + DataLength;
        try
        {
            if (pages.Length < SmallAppend)
            {
                Gather(pages);
            }
            else
            {
                FlushGathered();
                WriteDirectOrStaged(pages);
            }
        }
        catch (IOException ex)
        {
            _faulted = true;
            throw ImageErrors.Io("write", Path, ex);
        }
        _dataHash.Append(pages);
        DataLength += (ulong)pages.Length;
        PageProgress.Written(pages.Length);
        return offset;
    }

    /// <summary>
    /// Stores whole pages (at most <see cref="PageCodec.MaxPages"/> unless stored as they are): as
    /// they are where there is no codec and the file is not encrypted, else as one block —
    /// compressed with <paramref name="codec"/>, then encrypted with a fresh nonce if the file is —
    /// zero-padded to whole pages. The caller checksums the pages themselves, and describes its runs
    /// with <see cref="StoredBlock.Describe"/>.
    /// </summary>
    public StoredBlock Store(Codec codec, ReadOnlySpan<byte> pages)
    {
        if (codec == Codec.None && !Encrypted)
            return new StoredBlock(AppendRaw(pages), 0, Codec.None, ByteString.Empty, ByteString.Empty);
        if (pages.Length % ImageFormat.PageSize != 0 || pages.Length > PageCodec.MaxPages * ImageFormat.PageSize)
            throw new ArgumentException($"length {pages.Length} is not whole pages, at most {PageCodec.MaxPages}", nameof(pages));
        int room = ImageFormat.WholePages(PageCodec.Bound(codec, pages.Length));
        if (_compressed is null || _compressed.Length < room)
            _compressed = new PageBuffer(room);
        var block = _compressed.Span;
        int length = pages.Length;
        if (codec != Codec.None)
            length = PageCodec.Compress(codec, pages, block);
        var nonce = ByteString.Empty;
        var tag = ByteString.Empty;
        if (_key is not null)
        {
            Span<byte> sealedNonce = stackalloc byte[BlockCipher.NonceLength];
            Span<byte> sealedTag = stackalloc byte[BlockCipher.TagLength];
            // In place for a compressed block (AES-GCM allows it); from the pages otherwise.
            ReadOnlySpan<byte> plain = codec == Codec.None ? pages : block[..length];
            BlockCipher.Seal(_key, plain, block[..length], sealedNonce, sealedTag);
            (nonce, tag) = (ByteString.CopyFrom(sealedNonce), ByteString.CopyFrom(sealedTag));
        }
        int padded = ImageFormat.WholePages(length);
        block[length..padded].Clear();
        return new StoredBlock(AppendRaw(block[..padded]), (uint)length, codec, nonce, tag);
    }

    /// <summary>
    /// Stores whole pages of memory at <paramref name="address"/> (their checksums
    /// <paramref name="pageXxh3"/>) and adds the runs that describe them to <paramref name="runs"/>:
    /// one run where they are stored as they are, else one block of at most
    /// <see cref="PageCodec.MaxPages"/> pages each.
    /// </summary>
    public void StoreRuns(ulong address, ReadOnlySpan<byte> pages, ReadOnlySpan<ulong> pageXxh3, ICollection<PageRun> runs, Codec codec = Codec.None)
    {
        ArgumentNullException.ThrowIfNull(runs);
        int count = pages.Length / ImageFormat.PageSize;
        if (pageXxh3.Length != count)
            throw new ArgumentException($"{pageXxh3.Length} checksums for {count} pages", nameof(pageXxh3));
        int most = codec == Codec.None && !Encrypted ? Math.Max(count, 1) : PageCodec.MaxPages;
        for (int first = 0; first < count; first += most)
        {
            int n = Math.Min(most, count - first);
            var block = Store(codec, pages.Slice(first * ImageFormat.PageSize, n * ImageFormat.PageSize));
            var run = new PageRun { Address = address + (ulong)first * ImageFormat.PageSize, Count = (ulong)n };
            run.PageXxh3.AddRange(pageXxh3.Slice(first, n).ToArray());
            runs.Add(block.Describe(run, 0));
        }
    }

    private PageBuffer? _compressed;

    /// <summary>Whether <see cref="AppendClone"/> still tries reflinks (a refusal turns them off for this file).</summary>
    public bool Reflinks { get; private set; } = true;

    /// <summary>
    /// Appends whole blocks of <paramref name="source"/> at <paramref name="sourceOffset"/>, whose
    /// content is <paramref name="blocks"/>, by sharing them with the source file (FICLONERANGE: btrfs,
    /// xfs): nothing is copied, and the page file's data stays what it was when the source changes.
    /// Returns null, having appended nothing, where the file system cannot (another file system, no
    /// reflinks): then <see cref="AppendData"/> copies them.
    /// </summary>
    public ulong? AppendClone(SafeFileHandle source, long sourceOffset, ReadOnlySpan<byte> blocks)
    {
        if (!Reflinks || Encrypted || blocks.Length == 0 || blocks.Length % ImageFormat.PageSize != 0 || sourceOffset % ImageFormat.PageSize != 0)
            return null;
        ThrowIfNotWritable();
        ulong offset = PageFileHeader.Length + DataLength;
        try
        {
            FlushGathered();
        }
        catch (IOException ex)
        {
            _faulted = true;
            throw ImageErrors.Io("write", Path, ex);
        }
        if (!Reflink.TryClone(source, (ulong)sourceOffset, _handle, (ulong)_fileEnd, (ulong)blocks.Length))
        {
            Reflinks = false; // EXDEV, EOPNOTSUPP, EINVAL (block size): copying is what works here
            return null;
        }
        _fileEnd += blocks.Length;
        _dataHash.Append(blocks);
        DataLength += (ulong)blocks.Length;
        PageProgress.Written(blocks.Length);
        return offset;
    }

    /// <summary>Writes the header, fsyncs (if <paramref name="durable"/>) and closes; returns the size and manifest checksum.</summary>
    internal (ulong Size, ulong Xxh3) Complete(bool durable = true)
    {
        ThrowIfNotWritable();
        var headerBuffer = new PageBuffer(PageFileHeader.Length);
        Span<byte> header = headerBuffer.Span;
        PageFileHeader.Write(header, DataLength, Encrypted ? ImageHeader.Encrypted : 0);
        try
        {
            FlushGathered();
            RandomAccess.Write(_handle, header, 0);
        }
        catch (IOException ex)
        {
            _faulted = true;
            throw ImageErrors.Io("write", Path, ex);
        }
        if (durable)
        {
            ImageFiles.Fsync(_handle, Path);
        }
        Close();
        return (PageFileHeader.Length + DataLength, PageFileHeader.FileChecksum(header, _dataHash.GetCurrentHashAsUInt64()));
    }

    internal void Close()
    {
        _closed = true;
        _handle.Dispose();
        _gather = null;
    }

    private void Gather(ReadOnlySpan<byte> pages)
    {
        _gather ??= new PageBuffer(GatherLength);
        if (_gathered + pages.Length > _gather.Length)
        {
            FlushGathered();
        }
        pages.CopyTo(_gather.Span[_gathered..]);
        _gathered += pages.Length;
    }

    private void FlushGathered()
    {
        if (_gathered == 0 || _gather is null)
        {
            return;
        }
        RandomAccess.Write(_handle, _gather.Span[.._gathered], _fileEnd);
        _fileEnd += _gathered;
        _gathered = 0;
    }

    private void WriteDirectOrStaged(ReadOnlySpan<byte> pages)
    {
        if (!_direct || PageBuffer.IsAligned(pages))
        {
            RandomAccess.Write(_handle, pages, _fileEnd);
            _fileEnd += pages.Length;
            return;
        }
        _gather ??= new PageBuffer(GatherLength);
        for (int done = 0; done < pages.Length; done += GatherLength)
        {
            var part = pages.Slice(done, Math.Min(GatherLength, pages.Length - done));
            part.CopyTo(_gather.Span);
            RandomAccess.Write(_handle, _gather.Span[..part.Length], _fileEnd);
            _fileEnd += part.Length;
        }
    }

    internal static bool TryEnableDirectIo(SafeFileHandle handle)
    {
        if (Environment.GetEnvironmentVariable("AMBER_NO_DIRECT_IO") == "1")
            return false;
        // Interop.Fcntl takes a raw fd: hold a reference so the handle cannot be closed meanwhile.
        bool added = false;
        try
        {
            handle.DangerousAddRef(ref added);
            int fd = (int)handle.DangerousGetHandle();
            int flags = Interop.Fcntl(fd, Interop.F_GETFL, 0);
            // tmpfs and some others refuse O_DIRECT: they are memory already, buffered writes are right there.
            return flags >= 0 && Interop.Fcntl(fd, Interop.F_SETFL, flags | Interop.O_DIRECT) == 0;
        }
        finally
        {
            if (added)
            {
                handle.DangerousRelease();
            }
        }
    }

    private void ThrowIfNotWritable()
    {
        if (_closed)
        {
            throw new InvalidOperationException($"page file {Path} is already complete or its checkpoint writer was disposed");
        }
        if (_faulted)
        {
            throw new ImageStoreException($"page file {Path} failed an earlier write");
        }
    }
}
