using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Memory;

/// <summary>
/// Saves each shmem object a process maps or holds (memfds, shared anonymous memory) once, with its
/// name, size and seals, and the contents of its data extents (holes and zero pages are not stored):
/// once per checkpoint, by the first process found using it. Its mappings then only refer to it, so
/// a memfd mapped twice (e.g. .NET's W^X double mapping) comes back as one object mapped twice, and
/// memory shared by processes as one object they share (<see cref="Files.SharingCheck"/>).
/// </summary>
public static class ShmemDumper
{
    private const int ChunkBytes = 4 << 20;
    private const int PageSize = ImageFormat.PageSize;

    public static void Dump(int pid, ProcessImage image, PageFileWriter pages, SavedObjects saved, CancellationToken cancel)
    {
        var vmas = image.Mm.Vmas.Where(v => v.Kind == VmaKind.VmaShmem).ToList();
        var fds = image.Fds.Where(f => f.Kind == FdKind.FdMemfd).ToList();
        var buffer = new PageBuffer(ChunkBytes);
        foreach (ulong id in vmas.Select(v => v.ShmemId).Concat(fds.Select(f => f.ShmemId)).Distinct())
        {
            cancel.ThrowIfCancellationRequested();
            if (!saved.Claim(ObjectKind.Shmem, id, pid))
                continue;
            var mappings = vmas.Where(v => v.ShmemId == id).ToList();
            var fd = fds.FirstOrDefault(f => f.ShmemId == id);
            string label = fd?.Path ?? mappings[0].Name;
            bool anonymous = fd is null && label.StartsWith("/dev/zero", StringComparison.Ordinal);
            using var file = fd is not null ? RemoteFile.FromFd(pid, fd.Fd) : RemoteFile.FromMapping(pid, mappings[0].Start, mappings[0].End);
            var shmem = new ShmemImage { Id = id, Name = anonymous ? "" : MemfdName(label), Anonymous = anonymous, Size = (ulong)file.Size, Seals = file.Seals };
            CopyContents(file, pages, shmem.Pages, buffer);
            image.Mm.Shmem.Add(shmem);
        }
        DumpSysv(pid, image, pages, buffer, saved, cancel);
    }

    /// <summary>System V segments the process has attached: attributes from /proc/sysvipc/shm, contents through the mapping.</summary>
    private static void DumpSysv(int pid, ProcessImage image, PageFileWriter pages, PageBuffer buffer, SavedObjects saved, CancellationToken cancel)
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
            CopyContents(file, pages, sysv.Pages, buffer);
            image.Mm.SysvShm.Add(sysv);
        }
    }

    /// <summary>Copies a file's data extents into the page file as runs (offsets in the file), skipping zero pages.</summary>
    public static void CopyContents(RemoteFile file, PageFileWriter pages, IList<PageRun> runs, PageBuffer buffer)
    {
        foreach (var (offset, length) in file.DataExtents())
        {
            for (long at = offset; at < offset + length; at += buffer.Length)
            {
                int n = (int)Math.Min(buffer.Length, offset + length - at);
                n = (n + PageSize - 1) / PageSize * PageSize;
                var data = buffer.Span[..n];
                file.Read(at, data);
                AppendNonZero(pages, runs, at, data);
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
    public static void AppendNonZero(PageFileWriter pages, IList<PageRun> runs, long offset, ReadOnlySpan<byte> data)
    {
        foreach (var (first, count) in ZeroPages.NonZeroStretches(data))
        {
            var (fileOffset, xxh3) = pages.Append(data.Slice(first * PageSize, count * PageSize));
            runs.Add(new PageRun { Address = (ulong)(offset + first * PageSize), Count = (ulong)count, FileOffset = fileOffset, Xxh3 = xxh3 });
        }
    }
}
