using Amber.Checkpoint.Resources.Memory;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Resources.SharedMemory;

/// <summary>
/// Saves each shmem object a process maps or holds (memfds, shared anonymous memory) once, with its
/// name, size and seals, and the contents of its data extents (holes and zero pages are not stored):
/// once per checkpoint, by the first process found using it. Its mappings then only refer to it, so
/// a memfd mapped twice (e.g. .NET's W^X double mapping) comes back as one object mapped twice, and
/// memory shared by processes as one object they share (<see cref="Sharing"/>).
/// </summary>
public static class ShmemDumper
{
    private const int ChunkBytes = 4 << 20;

    public static void Dump(int pid, int imagePid, ProcessImage image, PageFileWriter pages, SavedObjects saved, ParentCheckpoint? earlier, CancellationToken cancel)
    {
        var vmas = image.Mm.Vmas.Where(v => v.Kind == VmaKind.VmaShmem).ToList();
        var fds = image.Fds.Where(f => f.Kind == FdKind.FdMemfd).ToList();
        // Made for a process that has any: 4 MiB of fresh memory is milliseconds of page faults under the freeze.
        PageBuffer? buffer = null;
        PageBuffer Buffer() => buffer ??= new PageBuffer(ChunkBytes);
        foreach (ulong id in vmas.Select(v => v.ShmemId).Concat(fds.Select(f => f.ShmemId)).Distinct())
        {
            cancel.ThrowIfCancellationRequested();
            if (!saved.Claim(ObjectKind.Shmem, id, pid))
                continue;
            var mappings = vmas.Where(v => v.ShmemId == id).ToList();
            var fd = fds.FirstOrDefault(f => f.ShmemId == id);
            string label = fd?.Path ?? mappings[0].Name;
            bool anonymous = fd is null && label.StartsWith("/dev/zero", StringComparison.Ordinal);
            using var file = fd is not null ? RemoteFile.FromFd(pid, fd.Fd, writable: false) : RemoteFile.FromMapping(pid, mappings[0].Start, mappings[0].End, writable: false);
            var shmem = new ShmemImage { Id = id, Name = anonymous ? "" : MemfdName(label), Anonymous = anonymous, Size = (ulong)file.Size, Seals = file.Seals };
            CopyContents(file, pages, shmem.Pages, Buffer(), earlier?.ObjectOf(imagePid, p => p.Mm.Shmem.Where(s => s.Id == id).Select(s => ((IList<PageRun>)s.Pages, s.PagesOf))));
            image.Mm.Shmem.Add(shmem);
        }
        DumpSysv(pid, imagePid, image, pages, Buffer, saved, earlier, cancel);
    }

    /// <summary>System V segments the process has attached: attributes from /proc/sysvipc/shm, contents through the mapping.</summary>
    private static void DumpSysv(int pid, int imagePid, ProcessImage image, PageFileWriter pages, Func<PageBuffer> buffer, SavedObjects saved, ParentCheckpoint? earlier, CancellationToken cancel)
    {
        foreach (var group in image.Mm.Vmas.Where(v => v.Kind == VmaKind.VmaSysv).GroupBy(v => v.ShmemId))
        {
            cancel.ThrowIfCancellationRequested();
            if (!saved.Claim(ObjectKind.Sysv, group.Key, pid))
                continue;
            var first = group.First();
            var segment = SysvSharedMemory.Find((int)group.Key)
                ?? throw new UnsupportedResourceException(pid, $"System V segment {group.Key}", "a segment /proc/sysvipc/shm does not list");
            var sysv = new SysvShmImage { Id = segment.Id, Key = segment.Key, Size = segment.Size, Mode = segment.Mode, Uid = segment.Uid, Gid = segment.Gid };
            using var file = RemoteFile.FromMapping(pid, first.Start, first.End);
            CopyContents(file, pages, sysv.Pages, buffer(),
                earlier?.ObjectOf(imagePid, p => p.Mm.SysvShm.Where(s => s.Id == segment.Id && s.Key == segment.Key).Select(s => ((IList<PageRun>)s.Pages, s.PagesOf))));
            image.Mm.SysvShm.Add(sysv);
        }
    }

    /// <summary>
    /// Copies a file's data extents into the page file as runs (offsets in the file), skipping zero
    /// pages, and keeping a reference to the copy an earlier checkpoint made of an unchanged page.
    /// </summary>
    public static void CopyContents(RemoteFile file, PageFileWriter pages, IList<PageRun> runs, PageBuffer buffer, ParentPages? parent = null)
    {
        foreach (var (offset, length) in file.DataExtents())
        {
            for (long at = offset; at < offset + length; at += buffer.Length)
            {
                int n = (int)Math.Min(buffer.Length, offset + length - at);
                n = ImageFormat.WholePages(n);
                var data = buffer.Span[..n];
                file.Read(at, data);
                AppendNonZero(pages, runs, at, data, parent);
            }
        }
    }

    /// <summary>"/memfd:NAME (deleted)" → NAME.</summary>
    public static string MemfdName(string path)
    {
        string name = path.StartsWith("/memfd:", StringComparison.Ordinal) ? path["/memfd:".Length..] : path;
        return name.EndsWith(" (deleted)", StringComparison.Ordinal) ? name[..^" (deleted)".Length] : name;
    }

    /// <summary>Appends the non-zero pages of <paramref name="data"/> (file contents at <paramref name="offset"/>) as runs.</summary>
    public static void AppendNonZero(PageFileWriter pages, IList<PageRun> runs, long offset, ReadOnlySpan<byte> data, ParentPages? parent = null)
    {
        foreach (var (first, count) in ZeroPages.NonZeroStretches(data))
        {
            var stretch = data.Slice(first * ImageFormat.PageSize, count * ImageFormat.PageSize);
            var hashes = PageHashes.Of(stretch);
            int storedFrom = 0;
            for (int i = 0; i <= count; i++)
            {
                ulong at = (ulong)(offset + (first + i) * ImageFormat.PageSize);
                PageRun? earlier = null;
                bool keep = i < count && parent is not null && parent.TryGet(at, out ulong xxh3, out earlier) && xxh3 == hashes[i];
                if (!keep && i < count)
                    continue;
                if (i > storedFrom)
                {
                    pages.StoreRuns((ulong)(offset + (first + storedFrom) * ImageFormat.PageSize), stretch[(storedFrom * ImageFormat.PageSize)..(i * ImageFormat.PageSize)], hashes.AsSpan(storedFrom, i - storedFrom), runs);
                }
                if (keep)
                {
                    if (runs.Count == 0 || !ParentPages.TryExtend(runs[^1], earlier!))
                        runs.Add(earlier!);
                }
                storedFrom = i + 1;
            }
        }
    }
}
