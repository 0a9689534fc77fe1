using Amber.Checkpoint.Resources.Memory;
using Amber.Checkpoint.Restore;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Resources.SharedMemory;

/// <summary>
/// Creates shared memory objects before the memory that maps them: memfds (same name, size and
/// contents, written from amber through a copy of the new fd; seals added once every mapping
/// exists), System V segments (same id, by amber), and shared anonymous memory that must be
/// mapped more than once — created with one anonymous mapping whose file is then held as an fd
/// through /proc/self/map_files, so it stays "/dev/zero (deleted)", as CRIU does.
/// An object one process uses is held at fds above its saved numbers until the fd table is rebuilt;
/// an object several processes use is created by their common ancestor into a slot (<see cref="CreateInSlots"/>).
/// </summary>
public static class ShmemRestorer
{
    private const uint SealSeal = 1;

    /// <summary>The objects this process creates for the tree, each into its slot.</summary>
    public static void CreateInSlots(RemoteCalls calls, ProcessImage image, RestoreTree tree, Func<int, PageFileRef, PageFileReader> pagesOf)
    {
        foreach (var shmem in image.Mm.Shmem.Where(s => s.InSlot))
        {
            int fd = CreateObject(calls, shmem, where => pagesOf(shmem.PagesOf, where));
            calls.Dup3(fd, tree.ObjectSlots[(ObjectKind.Shmem, shmem.Id)], closeOnExec: true);
            calls.Close(fd);
        }
    }

    /// <summary>
    /// An fd for every shmem object the process maps from an fd or holds one of: its own memfds,
    /// created now, and copies of the slots of the tree's objects it uses.
    /// </summary>
    public static Dictionary<ulong, int> CreateMemfds(RemoteCalls calls, ProcessImage image, RestoreTree tree, Func<int, PageFileRef, PageFileReader> pagesOf, int floor)
    {
        var memfds = new Dictionary<ulong, int>();
        foreach (var shmem in image.Mm.Shmem.Where(s => !s.Anonymous && !s.InSlot))
        {
            int created = CreateObject(calls, shmem, where => pagesOf(shmem.PagesOf, where));
            memfds[shmem.Id] = calls.DupAbove(created, floor);
            calls.Close(created);
        }
        var used = image.Mm.Vmas.Where(v => v.Kind == VmaKind.VmaShmem && !v.Inherited).Select(v => v.ShmemId)
            .Concat(image.Fds.Where(f => f.Kind == FdKind.FdMemfd).Select(f => f.ShmemId));
        foreach (ulong id in used.Distinct())
        {
            if (!memfds.ContainsKey(id) && tree.ObjectSlots.TryGetValue((ObjectKind.Shmem, id), out int slot))
                memfds[id] = calls.DupAbove(slot, floor);
        }
        return memfds;
    }

    /// <summary>A new memfd, or shared anonymous object, with the saved size and contents; returns its fd.</summary>
    private static int CreateObject(RemoteCalls calls, ShmemImage shmem, Func<PageFileRef, PageFileReader> pages)
    {
        int fd;
        if (shmem.Anonymous)
        {
            ulong size = ImageFormat.WholePages(shmem.Size);
            ulong at = calls.Mmap(0, size, Mman.ProtRead | Mman.ProtWrite, Mman.MapShared | Mman.MapAnonymous);
            fd = calls.OpenAt($"/proc/self/map_files/{at:x}-{at + size:x}", OpenFlags.ReadWrite | OpenFlags.CloseOnExec);
            calls.Munmap(at, size);
        }
        else
        {
            // A memfd made without MFD_ALLOW_SEALING reports exactly F_SEAL_SEAL.
            fd = calls.MemfdCreate(shmem.Name, allowSealing: shmem.Seals != SealSeal);
            calls.Truncate(fd, (long)shmem.Size);
        }
        using var file = RemoteFile.FromFd(calls.Memory.Pid, fd);
        using var buffer = new RunBuffer(shmem.Pages);
        foreach (var run in shmem.Pages)
        {
            var data = buffer.For(run);
            pages(run.StoredIn).ReadRun(run, data);
            file.Write((long)run.Address, data[..(int)Math.Min((ulong)data.Length, shmem.Size - run.Address)]);
        }
        return fd;
    }

    /// <summary>The System V segments this process creates (the first of the tree to attach them): same id, key, owner, mode and contents.</summary>
    public static void CreateSysvSegments(ProcessImage image, Func<int, PageFileRef, PageFileReader> pagesOf)
    {
        foreach (var s in image.Mm.SysvShm)
        {
            try
            {
                SysvSharedMemory.Recreate(new SysvSegment(s.Key, s.Id, s.Mode, s.Size, s.Uid, s.Gid), memory =>
                {
                    memory.Clear();
                    using var buffer = new RunBuffer(s.Pages);
                    foreach (var run in s.Pages)
                    {
                        var data = buffer.For(run);
                        pagesOf(s.PagesOf, run.StoredIn).ReadRun(run, data);
                        int length = (int)Math.Min((ulong)data.Length, s.Size - run.Address);
                        data[..length].CopyTo(memory[(int)run.Address..]);
                    }
                });
            }
            catch (IOException e)
            {
                throw new CheckpointException($"process {image.Pid}: {e.Message}");
            }
        }
    }

    /// <summary>Seals go on last: F_SEAL_WRITE would forbid the writable mappings made before it.</summary>
    public static void AddSeals(RemoteCalls calls, ProcessImage image, IReadOnlyDictionary<ulong, int> memfds)
    {
        foreach (var shmem in image.Mm.Shmem.Where(s => !s.Anonymous && !s.InSlot && HasSealsToAdd(s)))
            calls.AddSeals(memfds[shmem.Id], shmem.Seals);
    }

    /// <summary>
    /// Seals of memfds the tree shares, once every process has mapped them: added from amber, through
    /// an fd or a mapping of the object in any process (seals belong to the file, not to an fd).
    /// </summary>
    public static void AddSharedSeals(RestoreTree tree)
    {
        foreach (var shmem in tree.Creators.Where(i => !i.Zombie).SelectMany(i => i.Mm.Shmem).Where(s => !s.Anonymous && s.InSlot && HasSealsToAdd(s)))
        {
            using var file = OpenAnywhere(tree, shmem.Id)
                ?? throw new CheckpointException($"memfd {shmem.Name}: no restored process holds or maps it, to seal it");
            file.AddSeals(shmem.Seals);
        }
    }

    private static bool HasSealsToAdd(ShmemImage s) => s.Seals != SealSeal && s.Seals != 0;

    private static RemoteFile? OpenAnywhere(RestoreTree tree, ulong id)
    {
        foreach (var image in tree.Images.Where(i => !i.Zombie))
        {
            if (image.Fds.FirstOrDefault(f => f.Kind == FdKind.FdMemfd && f.ShmemId == id) is { } fd)
                return RemoteFile.FromFd(tree.HostId(image.Pid), fd.Fd);
            if (image.Mm.Vmas.FirstOrDefault(v => v.Kind == VmaKind.VmaShmem && v.ShmemId == id) is { } vma)
                return RemoteFile.FromMapping(tree.HostId(image.Pid), vma.Start, vma.End);
        }
        return null;
    }
}

/// <summary>
/// One buffer, from the pool, for every run of an object in turn: fresh memory is slow to touch on
/// these VMs (a new array per run made the .NET runtime's 10 MiB code memfd cost 80 ms to restore).
/// </summary>
internal sealed class RunBuffer(IEnumerable<PageRun> runs) : IDisposable
{
    private readonly byte[] _bytes = System.Buffers.ArrayPool<byte>.Shared.Rent((int)runs.Select(r => r.Count).DefaultIfEmpty(0UL).Max() * (int)ImageFormat.PageSize);

    public Span<byte> For(PageRun run) => _bytes.AsSpan(0, (int)run.Count * (int)ImageFormat.PageSize);

    public void Dispose() => System.Buffers.ArrayPool<byte>.Shared.Return(_bytes);
}
