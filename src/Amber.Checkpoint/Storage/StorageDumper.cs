using Amber.Checkpoint.Resources.Memory;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Microsoft.Win32.SafeHandles;

namespace Amber.Checkpoint.Storage;

/// <summary>What a storage checkpoint captured.</summary>
/// <param name="Files">Regular files in the storage.</param>
/// <param name="FilesRead">Of those, the files read (new or changed since the parent).</param>
/// <param name="PagesWritten">4 KiB blocks stored in this checkpoint.</param>
/// <param name="PagesKept">Blocks unchanged since the parent, kept where it stored them.</param>
/// <param name="PagesShared">Of the blocks stored, those shared with the file by a reflink (not copied).</param>
public sealed record StorageStats(int Files, int FilesRead, long PagesWritten, long PagesKept, long PagesShared = 0);

/// <summary>
/// Captures the declared storage directories while the group is frozen (the same barrier as its
/// memory): every directory, file, symlink and fifo with owner, permissions and times, and the file
/// contents in 4 KiB blocks checksummed like memory pages. Incremental after a parent: a file whose
/// inode and ctime are those the parent saw is not even read; a changed one is read, and only its
/// blocks that differ from the parent's copy are stored. Zero blocks are holes (stored as nothing).
/// Where the store and the storage share a file system with reflinks (btrfs, xfs), blocks are
/// stored by sharing them with the file (FICLONERANGE) rather than by writing a copy — and a changed
/// file is not even read at the barrier: a reflink snapshot of it is taken there (no data copied),
/// and read, compared and stored from after the processes run again (<see cref="Finish"/>).
/// </summary>
public sealed class StorageDumper : IDisposable
{
    private const int ChunkPages = 256;

    // Smaller files are read at the barrier (as fast as a snapshot), and so is everything past the
    // snapshots one checkpoint keeps open (a descriptor each).
    private const ulong SnapshotAtLeast = 64 << 10;
    private const int MaxSnapshots = 256;

    private readonly CheckpointWriter _writer;
    private readonly ParentCheckpoint? _parent;
    private readonly CancellationToken _cancel;
    private readonly List<string> _warnings;
    private readonly PageBuffer _buffer = new(ChunkPages * ImageFormat.PageSize);
    private PageFileWriter? _pages;
    private int _files, _filesRead;
    private long _written, _kept, _shared;
    private readonly List<(string Path, ulong Size, StorageEntry File, StorageEntry? Earlier, SafeFileHandle Snapshot)> _snapshots = [];

    private StorageDumper(CheckpointWriter writer, ParentCheckpoint? parent, List<string> warnings, CancellationToken cancel)
    {
        _writer = writer;
        _parent = parent;
        _warnings = warnings;
        _cancel = cancel;
    }

    /// <summary>What was captured; the blocks of files snapshotted at the barrier are in it after <see cref="Finish"/>.</summary>
    public StorageImage Image { get; } = new();

    /// <summary>Captures the storage at the barrier; <see cref="Finish"/> it, or dispose of it.</summary>
    /// <param name="roots">The storage directories (absolute).</param>
    /// <param name="excluded">Paths never captured (the image store, if it is inside a root).</param>
    public static StorageDumper Capture(
        IReadOnlyList<string> roots, IReadOnlyList<string> excluded, CheckpointWriter writer, ParentCheckpoint? parent, List<string> warnings, CancellationToken cancel)
    {
        var dumper = new StorageDumper(writer, parent, warnings, cancel);
        try
        {
            dumper.CaptureRoots(roots, excluded);
            return dumper;
        }
        catch
        {
            dumper.Dispose();
            throw;
        }
    }

    /// <summary>Reads the files snapshotted at the barrier and stores their blocks (the processes may run meanwhile).</summary>
    public StorageStats Finish()
    {
        foreach (var (path, size, file, earlier, snapshot) in _snapshots)
            CopyBlocks(snapshot, path, size, file, earlier);
        Dispose();
        return new StorageStats(_files, _filesRead, _written, _kept, _shared);
    }

    public void Dispose()
    {
        foreach (var snapshot in _snapshots)
            snapshot.Snapshot.Dispose();
        _snapshots.Clear();
    }

    private void CaptureRoots(IReadOnlyList<string> roots, IReadOnlyList<string> excluded)
    {
        var parent = _parent;
        var image = Image;
        var parentStorage = parent?.Storage();
        var all = roots.Select(r => Path.TrimEndingDirectorySeparator(Path.GetFullPath(r))).Distinct().ToList();
        if (all.FirstOrDefault(r => all.Any(o => StoragePaths.IsBelow(r, o))) is { } nested)
            throw new CheckpointException($"storage {nested} is inside another storage directory: declare one of them");
        foreach (string root in all)
        {
            var earlier = parentStorage?.Roots.FirstOrDefault(r => r.Path == root);
            image.Roots.Add(CaptureRoot(root, [.. excluded.Where(e => StoragePaths.IsBelow(e, root))], earlier));
        }
    }

    private StorageRoot CaptureRoot(string root, List<string> excluded, StorageRoot? earlier)
    {
        if (!FileStat.TryGetNoFollow(root, out var st) || !st.IsDirectory)
            throw new CheckpointException($"storage {root} is not a directory");
        var result = new StorageRoot { Path = root, Excluded = { excluded.Select(e => StoragePaths.Relative(root, e)) } };
        var before = earlier?.Entries.ToDictionary(e => e.Path) ?? [];
        var links = new Dictionary<(ulong, ulong), string>();
        result.Entries.Add(Entry("", StorageKind.StorageDirectory, st));
        var pending = new Stack<string>();
        pending.Push("");
        while (pending.Count > 0)
        {
            _cancel.ThrowIfCancellationRequested();
            string dir = pending.Pop();
            var names = Directory.EnumerateFileSystemEntries(StoragePaths.Join(root, dir)).Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
            var subdirectories = new List<string>();
            foreach (string? name in names)
            {
                string relative = dir.Length == 0 ? name! : $"{dir}/{name}";
                string full = StoragePaths.Join(root, relative);
                if (name!.StartsWith(StoragePaths.StagingPrefix, StringComparison.Ordinal) || excluded.Contains(full))
                    continue;
                if (!FileStat.TryGetNoFollow(full, out var entry))
                    continue; // gone between the listing and now: not part of the frozen state
                if (entry.IsDirectory)
                {
                    result.Entries.Add(Entry(relative, StorageKind.StorageDirectory, entry));
                    subdirectories.Add(relative);
                }
                else if (entry.IsSymlink)
                    result.Entries.Add(Entry(relative, StorageKind.StorageSymlink, entry, new FileInfo(full).LinkTarget ?? ""));
                else if (entry.IsFifo)
                    result.Entries.Add(Entry(relative, StorageKind.StorageFifo, entry));
                else if (entry.IsRegular)
                {
                    _files++;
                    var file = Entry(relative, StorageKind.StorageFile, entry);
                    if (entry.Links > 1 && links.TryGetValue((entry.Device, entry.Inode), out var first))
                        file.HardLink = first;
                    else
                    {
                        if (entry.Links > 1)
                            links[(entry.Device, entry.Inode)] = relative;
                        CaptureFile(full, entry, file, before.GetValueOrDefault(relative));
                    }
                    result.Entries.Add(file);
                }
                else
                    _warnings.Add($"storage: {full} is a socket or a device, not captured");
            }
            // Depth first, in name order: every directory comes before what it holds.
            for (int i = subdirectories.Count - 1; i >= 0; i--)
                pending.Push(subdirectories[i]);
        }
        return result;
    }

    private static StorageEntry Entry(string path, StorageKind kind, in FileStat st, string target = "") => new()
    {
        Path = path, Kind = kind, Mode = st.Permissions, Uid = st.Uid, Gid = st.Gid, AtimeNs = st.AtimeNs, MtimeNs = st.MtimeNs,
        Size = kind == StorageKind.StorageFile ? (ulong)st.Size : 0, Target = target, Device = st.Device, Inode = st.Inode, CtimeNs = st.CtimeNs,
    };

    private void CaptureFile(string path, in FileStat st, StorageEntry file, StorageEntry? earlier)
    {
        if (earlier is { Kind: StorageKind.StorageFile, HardLink: "" } && StoragePaths.Unchanged(earlier, st))
        {
            // Not changed since the parent saw it (ctime cannot be set back): its blocks are where they were.
            foreach (var run in earlier.Blocks)
            {
                var kept = run.Clone();
                kept.Source = _parent!.Sources.FromParent(run.Source);
                file.Blocks.Add(kept);
                _kept += (long)run.Count;
            }
            return;
        }
        using var handle = StoragePaths.OpenForReading(path);
        ulong size = (ulong)st.Size;
        if (size >= SnapshotAtLeast && _snapshots.Count < MaxSnapshots && _writer.TrySnapshot(handle) is { } snapshot)
        {
            _snapshots.Add((path, size, file, earlier, snapshot)); // read once the processes run again
            return;
        }
        CopyBlocks(handle, path, size, file, earlier);
    }

    /// <summary>
    /// Reads a changed file (<paramref name="handle"/>: the file, or a snapshot of it) and stores
    /// its blocks that differ from the parent's copy; zero blocks are holes.
    /// </summary>
    private void CopyBlocks(SafeFileHandle handle, string path, ulong size, StorageEntry file, StorageEntry? earlier)
    {
        _filesRead++;
        var parentBlocks = earlier is { Kind: StorageKind.StorageFile, HardLink: "" } ? new ParentPages(earlier.Blocks, _parent!.Sources.FromParent) : null;
        var runs = new RunBuilder(file.Blocks);
        for (ulong offset = 0; offset < size; offset += (ulong)_buffer.Length)
        {
            _cancel.ThrowIfCancellationRequested();
            int length = (int)Math.Min((ulong)_buffer.Length, size - offset);
            var data = _buffer.Span;
            int read = ReadFully(handle, data[..length], (long)offset, path);
            int pages = (read + ImageFormat.PageSize - 1) / ImageFormat.PageSize;
            data[read..(pages * ImageFormat.PageSize)].Clear();
            var hashes = PageHashes.Of(data[..(pages * ImageFormat.PageSize)]);
            int storeFrom = -1;
            for (int i = 0; i <= pages; i++)
            {
                bool store = false;
                if (i < pages)
                {
                    var page = data.Slice(i * ImageFormat.PageSize, ImageFormat.PageSize);
                    ulong address = offset + (ulong)(i * ImageFormat.PageSize);
                    if (page.IndexOfAnyExcept((byte)0) < 0)
                        runs.Hole();
                    else if (parentBlocks is not null && parentBlocks.TryGet(address, out ulong h, out var copy) && h == hashes[i])
                    {
                        runs.Kept(copy!);
                        _kept++;
                    }
                    else
                        store = true;
                }
                if (store && storeFrom < 0)
                    storeFrom = i;
                if (!store && storeFrom >= 0)
                {
                    // The changed blocks since storeFrom, stored before the buffer is reused.
                    ulong at = offset + (ulong)(storeFrom * ImageFormat.PageSize);
                    var changed = data[(storeFrom * ImageFormat.PageSize)..(i * ImageFormat.PageSize)];
                    if (Pages.Encrypted)
                        runs.Encrypted(Pages, at, changed, hashes.AsSpan(storeFrom, i - storeFrom)); // never shared by reflink: encrypted
                    else
                        runs.Stored(at, hashes.AsSpan(storeFrom, i - storeFrom), Store(handle, at, changed, size));
                    _written += i - storeFrom;
                    storeFrom = -1;
                }
            }
            if (read < length)
                break; // shorter than it was a moment ago: the rest reads as nothing
        }
    }

    private PageFileWriter Pages => _pages ??= _writer.CreatePageFile(ImageNames.StoragePages);

    /// <summary>
    /// Stores the blocks of the file at <paramref name="at"/> (their content <paramref name="blocks"/>):
    /// shared with the file by a reflink where it can, its last partial block (padded with zeros)
    /// copied. Returns where they start in the page file.
    /// </summary>
    private ulong Store(SafeFileHandle file, ulong at, ReadOnlySpan<byte> blocks, ulong size)
    {
        int whole = (int)Math.Min((ulong)blocks.Length, (size - at) / ImageFormat.PageSize * ImageFormat.PageSize);
        if (whole > 0 && Pages.AppendClone(file, (long)at, blocks[..whole]) is { } start)
        {
            _shared += whole / ImageFormat.PageSize;
            if (whole < blocks.Length)
                Pages.AppendData(blocks[whole..]);
            return start;
        }
        return Pages.AppendData(blocks);
    }

    private static int ReadFully(SafeFileHandle handle, Span<byte> into, long offset, string path)
    {
        int total = 0;
        while (total < into.Length)
        {
            int n;
            try
            {
                n = RandomAccess.Read(handle, into[total..], offset + total);
            }
            catch (IOException e)
            {
                throw new CheckpointException($"storage: cannot read {path}: {e.Message}", e);
            }
            if (n == 0)
                break;
            total += n;
        }
        return total;
    }

    /// <summary>Builds a file's runs in offset order, joining blocks that follow each other in the file and where they are kept.</summary>
    private sealed class RunBuilder(IList<PageRun> runs)
    {
        private PageRun? _open;

        public void Hole() => _open = null;

        /// <param name="page">A block kept where the parent kept it (a run of one block).</param>
        public void Kept(PageRun page)
        {
            if (_open is { } r && ParentPages.TryExtend(r, page))
                return;
            _open = page;
            runs.Add(page);
        }

        /// <summary>Blocks stored encrypted (blocks of their own, never joined with what comes before).</summary>
        public void Encrypted(PageFileWriter pages, ulong address, ReadOnlySpan<byte> blocks, ReadOnlySpan<ulong> hashes)
        {
            var stored = new List<PageRun>();
            pages.StoreRuns(address, blocks, hashes, stored);
            foreach (var run in stored)
                runs.Add(run);
            _open = stored[^1];
        }

        public void Stored(ulong address, ReadOnlySpan<ulong> hashes, ulong fileOffset)
        {
            var run = new PageRun { Address = address, Count = (ulong)hashes.Length, FileOffset = fileOffset };
            foreach (ulong h in hashes)
                run.PageXxh3.Add(h);
            runs.Add(run);
            _open = run;
        }
    }
}
