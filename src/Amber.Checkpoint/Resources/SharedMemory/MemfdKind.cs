using Amber.Image.Schema;

namespace Amber.Checkpoint.Resources.SharedMemory;

/// <summary>
/// An fd of a memfd: saved by inode (its contents once, with the shared memory, by
/// <see cref="ShmemDumper"/>); restored from the memfd made before the process's memory
/// (<see cref="ShmemRestorer"/>), with its flags and its own offset.
/// </summary>
public sealed class MemfdKind : IFileKind
{
    public IReadOnlyList<FdKind> Restores { get; } = [FdKind.FdMemfd];

    public bool TryDump(OpenFd fd, FdImage image)
    {
        if (!fd.Stat.IsRegular || !fd.Link.StartsWith("/memfd:", StringComparison.Ordinal))
            return false;
        image.Kind = FdKind.FdMemfd;
        image.ShmemId = fd.Stat.Inode;
        return true;
    }

    public void Restore(FdRestore restore, FdImage fd)
    {
        restore.Share(restore.Memfds[fd.ShmemId], fd);
        if (fd.Offset != 0)
            restore.Calls.Seek(fd.Fd, fd.Offset);
    }
}
