using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Storage;

/// <summary>What a rollback did.</summary>
public sealed record RollbackStats(int FilesWritten, int FilesKept, int Removed);

/// <summary>
/// Puts a group's storage back as a checkpoint saw it, before its processes are restored: the same
/// directories, files (contents, sizes, holes), symlinks and fifos, owners, permissions and times;
/// whatever was added since is removed. In two phases, so that a damaged image changes nothing:
/// first every file that differs is written (and checked against its checksums) into a staging
/// directory inside the root, then, with nothing left that can fail on the image, the tree is made
/// to match and the staged files are renamed into place. A file that is still the one saved (same
/// inode, not changed since) is left alone.
/// </summary>
public static class StorageRollback
{
    private const int ChunkPages = 256;

    /// <summary>Checks a storage image before anything is touched: paths that stay below their root, runs of page data.</summary>
    public static void Validate(StorageImage storage)
    {
        var roots = storage.Roots.Select(r => r.Path).ToList();
        foreach (var root in storage.Roots)
        {
            void Fail(string what) => throw new CheckpointException($"the storage checkpoint of {root.Path} is inconsistent: {what}");
            if (!root.Path.StartsWith('/') || root.Path.Split('/').Any(n => n is "." or ".."))
                Fail("its path is not absolute");
            if (roots.Any(r => StoragePaths.IsBelow(root.Path, r)))
                Fail("it is inside another storage directory");
            if (root.Entries.Count == 0 || root.Entries[0].Path != "" || root.Entries[0].Kind != StorageKind.StorageDirectory)
                Fail("the root directory is not its first entry");
            var seen = new Dictionary<string, StorageEntry> { [""] = root.Entries[0] };
            foreach (var e in root.Entries.Skip(1))
            {
                if (!StoragePaths.IsSafeRelative(e.Path) || seen.ContainsKey(e.Path))
                    Fail($"entry '{e.Path}' is not a path below it, or is repeated");
                string parent = e.Path.Contains('/') ? e.Path[..e.Path.LastIndexOf('/')] : "";
                if (!seen.TryGetValue(parent, out var dir) || dir.Kind != StorageKind.StorageDirectory)
                    Fail($"entry '{e.Path}' comes before its directory");
                if (e.Kind == StorageKind.StorageFile && e.HardLink != "" && (!seen.TryGetValue(e.HardLink, out var first) || first.Kind != StorageKind.StorageFile || first.HardLink != ""))
                    Fail($"entry '{e.Path}' is a link to '{e.HardLink}', not a file listed before it");
                if (e.Blocks.Any(r => r.Count == 0 || (ulong)r.PageXxh3.Count != r.Count || r.Address % ImageFormat.PageSize != 0 || r.Address + r.Count * ImageFormat.PageSize > e.Size + ImageFormat.PageSize - 1))
                    Fail($"file '{e.Path}' has a run of blocks outside it or without checksums");
                seen[e.Path] = e;
            }
            if (root.Excluded.Any(x => !StoragePaths.IsSafeRelative(x)))
                Fail("an excluded path is not below it");
        }
    }

    public static RollbackStats Rollback(CheckpointReader reader, StorageImage storage, CancellationToken cancel)
    {
        int written = 0, kept = 0, removed = 0;
        foreach (var root in storage.Roots)
        {
            var (w, k, r) = RollbackRoot(reader, root, cancel);
            written += w;
            kept += k;
            removed += r;
        }
        return new RollbackStats(written, kept, removed);
    }

    private static (int Written, int Kept, int Removed) RollbackRoot(CheckpointReader reader, StorageRoot root, CancellationToken cancel)
    {
        if (FileStat.TryGetNoFollow(root.Path, out var rootStat) && !rootStat.IsDirectory)
            throw new CheckpointException($"cannot roll back storage {root.Path}: it is no longer a directory");
        Directory.CreateDirectory(root.Path);
        string staging = Path.Join(root.Path, $"{StoragePaths.StagingPrefix}{Guid.NewGuid():N}");
        Directory.CreateDirectory(staging, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        try
        {
            // Phase 1: the files that differ, written aside and checked; nothing of the tree is changed yet.
            var staged = new Dictionary<string, string>();
            var buffer = new PageBuffer(ChunkPages * ImageFormat.PageSize);
            var sources = new Dictionary<PageFileRef, PageFileReader>();
            try
            {
                foreach (var e in root.Entries.Where(e => e.Kind == StorageKind.StorageFile && e.HardLink == ""))
                {
                    cancel.ThrowIfCancellationRequested();
                    if (FileStat.TryGetNoFollow(StoragePaths.Join(root.Path, e.Path), out var now) && StoragePaths.Unchanged(e, now))
                        continue;
                    string path = Path.Join(staging, staged.Count.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    WriteFile(path, e, reader, sources, buffer);
                    staged[e.Path] = path;
                }
            }
            finally
            {
                foreach (var s in sources.Values)
                    s.Dispose();
            }
            cancel.ThrowIfCancellationRequested();

            // Phase 2: the tree made to match.
            var wanted = root.Entries.ToDictionary(e => e.Path);
            // Never the store being restored from, wherever it is.
            var excluded = root.Excluded.Select(x => StoragePaths.Join(root.Path, x)).Append(staging).Append(Path.GetDirectoryName(reader.Directory)!).ToHashSet();
            int removed = RemoveUnwanted(root.Path, "", wanted, excluded);
            int created = 0;
            foreach (var e in root.Entries)
            {
                string path = StoragePaths.Join(root.Path, e.Path);
                bool exists = FileStat.TryGetNoFollow(path, out var now);
                switch (e.Kind)
                {
                    case StorageKind.StorageDirectory:
                        if (!exists)
                        {
                            Directory.CreateDirectory(path);
                            created++;
                        }
                        break;
                    case StorageKind.StorageFile when e.HardLink != "":
                        string first = StoragePaths.Join(root.Path, e.HardLink);
                        if (exists && FileStat.TryGetNoFollow(first, out var target) && target.Inode == now.Inode && target.Device == now.Device)
                            break;
                        if (exists)
                            File.Delete(path);
                        PathAttributes.Link(first, path);
                        created++;
                        break;
                    case StorageKind.StorageFile:
                        if (staged.TryGetValue(e.Path, out var from))
                            File.Move(from, path, overwrite: true);
                        break;
                    case StorageKind.StorageSymlink:
                        if (exists && new FileInfo(path).LinkTarget == e.Target)
                            break;
                        if (exists)
                            File.Delete(path);
                        File.CreateSymbolicLink(path, e.Target);
                        created++;
                        break;
                    case StorageKind.StorageFifo:
                        if (!exists)
                        {
                            PathAttributes.MakeFifo(path, e.Mode);
                            created++;
                        }
                        break;
                }
            }
            Directory.Delete(staging, recursive: true);
            // Owners, permissions and times; directories last and deepest first, as filling them changed their times.
            foreach (var e in root.Entries.Where(e => e.Kind != StorageKind.StorageDirectory && e.HardLink == "").Concat(root.Entries.Where(e => e.Kind == StorageKind.StorageDirectory).Reverse()))
                SetAttributes(StoragePaths.Join(root.Path, e.Path), e);
            // The renames, removals and new entries durable too (only if anything changed).
            if (staged.Count > 0 || removed > 0 || created > 0)
            {
                foreach (var e in root.Entries.Where(e => e.Kind == StorageKind.StorageDirectory))
                    PathAttributes.FsyncDirectory(StoragePaths.Join(root.Path, e.Path));
            }
            return (staged.Count, root.Entries.Count(e => e.Kind == StorageKind.StorageFile && e.HardLink == "") - staged.Count, removed);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Kernel.KernelCallException or ImageFormatException)
        {
            throw new CheckpointException($"cannot roll back storage {root.Path}: {e.Message}", e);
        }
        finally
        {
            if (Directory.Exists(staging))
                Directory.Delete(staging, recursive: true);
        }
    }

    private static void WriteFile(string path, StorageEntry e, CheckpointReader reader, Dictionary<PageFileRef, PageFileReader> sources, PageBuffer buffer)
    {
        using var file = File.OpenHandle(path, FileMode.CreateNew, FileAccess.Write, FileShare.None); // in the staging directory, 0700
        RandomAccess.SetLength(file, (long)e.Size);
        foreach (var run in e.Blocks)
        {
            if (!sources.TryGetValue(run.StoredIn, out var pages))
                sources[run.StoredIn] = pages = reader.OpenPageFile(ImageNames.StoragePages, run.StoredIn);
            if (run.IsBlock)
            {
                // An encrypted block (at most PageCodec.MaxPages), decrypted and checked whole.
                var block = new byte[checked((int)run.Count * ImageFormat.PageSize)];
                pages.ReadRun(run, block);
                RandomAccess.Write(file, block.AsSpan(0, (int)Math.Min((ulong)block.Length, e.Size - run.Address)), (long)run.Address);
                continue;
            }
            for (ulong done = 0; done < run.Count; done += ChunkPages)
            {
                int n = (int)Math.Min(ChunkPages, run.Count - done);
                var data = buffer.Span[..(n * ImageFormat.PageSize)];
                pages.ReadRun(run.FileOffset + done * ImageFormat.PageSize, data, [.. run.PageXxh3.Skip((int)done).Take(n)]);
                ulong at = run.Address + done * ImageFormat.PageSize;
                // The last block of a file is stored whole (zero-filled): only the file's own bytes go back.
                // Checked, whole blocks are shared with the image where the file system has reflinks.
                int length = (int)Math.Min((ulong)data.Length, e.Size - at);
                if (length != data.Length || !pages.CloneTo(run.FileOffset + done * ImageFormat.PageSize, length, file, (long)at))
                    RandomAccess.Write(file, data[..length], (long)at);
            }
        }
        PathAttributes.Fsync(file, path); // durable before it is renamed into place
    }

    /// <summary>Removes what is below <paramref name="dir"/> now but not in the checkpoint (or is there as another kind of entry).</summary>
    private static int RemoveUnwanted(string root, string dir, Dictionary<string, StorageEntry> wanted, HashSet<string> excluded)
    {
        int removed = 0;
        foreach (string full in Directory.EnumerateFileSystemEntries(StoragePaths.Join(root, dir)))
        {
            if (excluded.Contains(full) || !FileStat.TryGetNoFollow(full, out var now))
                continue;
            string relative = StoragePaths.Relative(root, full);
            var kind = now.IsDirectory ? StorageKind.StorageDirectory : now.IsSymlink ? StorageKind.StorageSymlink : now.IsFifo ? StorageKind.StorageFifo
                : now.IsRegular ? StorageKind.StorageFile : (StorageKind)(-1);
            if (wanted.TryGetValue(relative, out var e) && e.Kind == kind)
            {
                if (kind == StorageKind.StorageDirectory)
                    removed += RemoveUnwanted(root, relative, wanted, excluded);
                continue;
            }
            if (now.IsDirectory && excluded.Any(x => StoragePaths.IsBelow(x, full)))
            {
                removed += RemoveUnwanted(root, relative, wanted, excluded); // what must stay is inside
                continue;
            }
            if (now.IsDirectory)
                Directory.Delete(full, recursive: true);
            else
                File.Delete(full);
            removed++;
        }
        return removed;
    }

    private static void SetAttributes(string path, StorageEntry e)
    {
        if (FileStat.TryGetNoFollow(path, out var now) && now.Uid == e.Uid && now.Gid == e.Gid && now.Permissions == e.Mode && now.MtimeNs == e.MtimeNs && now.AtimeNs == e.AtimeNs)
            return;
        PathAttributes.Set(path, e.Kind == StorageKind.StorageSymlink, e.Uid, e.Gid, e.Mode, e.AtimeNs, e.MtimeNs);
    }
}
