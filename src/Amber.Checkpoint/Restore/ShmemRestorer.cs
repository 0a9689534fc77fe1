using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// Creates the process's memfds before its memory is mapped: same name, size and contents (written
/// from amber through a copy of the new fd), seals added once the mappings exist. They are held at
/// fds above every saved number until the fd table is rebuilt.
/// </summary>
public static class ShmemRestorer
{
    private const uint SealSeal = 1;

    public static Dictionary<ulong, int> CreateMemfds(RemoteCalls calls, ProcessImage image, PageFileReader pages, int floor)
    {
        var memfds = new Dictionary<ulong, int>();
        foreach (var shmem in image.Mm.Shmem.Where(s => !s.Anonymous))
        {
            // A memfd made without MFD_ALLOW_SEALING reports exactly F_SEAL_SEAL.
            int created = calls.MemfdCreate(shmem.Name, allowSealing: shmem.Seals != SealSeal);
            int fd = calls.DupAbove(created, floor);
            calls.Close(created);
            calls.Truncate(fd, (long)shmem.Size);
            using var file = SharedMemoryFile.FromFd(image.Pid, fd);
            foreach (var run in shmem.Pages)
            {
                var data = new byte[run.Count * ImageFormat.PageSize];
                pages.ReadRun(run.FileOffset, data, run.Xxh3);
                file.Write((long)run.Address, data);
            }
            memfds[shmem.Id] = fd;
        }
        return memfds;
    }

    /// <summary>The System V segments this process was the first to attach: same id, key, owner, mode and contents.</summary>
    public static void CreateSysvSegments(ProcessImage image, PageFileReader pages)
    {
        foreach (var s in image.Mm.SysvShm)
        {
            try
            {
                SysvSharedMemory.Recreate(new SysvSegment(s.Key, s.Id, s.Mode, s.Size, s.Uid, s.Gid), memory =>
                {
                    memory.Clear();
                    foreach (var run in s.Pages)
                    {
                        var data = new byte[run.Count * ImageFormat.PageSize];
                        pages.ReadRun(run.FileOffset, data, run.Xxh3);
                        int length = (int)Math.Min((ulong)data.Length, s.Size - run.Address);
                        data.AsSpan(0, length).CopyTo(memory[(int)run.Address..]);
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
        foreach (var shmem in image.Mm.Shmem.Where(s => !s.Anonymous && s.Seals != SealSeal && s.Seals != 0))
            calls.AddSeals(memfds[shmem.Id], shmem.Seals);
    }
}
