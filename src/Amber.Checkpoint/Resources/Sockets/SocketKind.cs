using Amber.Image.Schema;

namespace Amber.Checkpoint.Resources.Sockets;

/// <summary>
/// An fd of a socket (above fds 0-2, where a socket is the process's link to whoever started it).
/// Saved by <see cref="SocketDumper"/>: a connected unix socket as one end of a pair
/// (<see cref="SocketPairs"/>), any other as a socket made again by <see cref="SocketRestorer"/>.
/// </summary>
public sealed class SocketKind : IFileKind
{
    public IReadOnlyList<FdKind> Restores { get; } = [FdKind.FdSocket, FdKind.FdSocketPair];

    public bool TryDump(OpenFd fd, FdImage image)
    {
        if (!fd.Stat.IsSocket || fd.Fd <= 2)
            return false;
        SocketDumper.Dump(fd.Pid, image, fd.Stat, fd.Socket);
        return true;
    }

    public void Restore(FdRestore restore, FdImage fd)
    {
        if (fd.Kind == FdKind.FdSocketPair)
            restore.Share(restore.Tree.PairSlots[(fd.SocketPair, fd.SocketPairSecond)], fd);
        else
            restore.Place(fd, SocketRestorer.Create(restore.Calls, fd, restore.Tree.TcpRepairs), closeOnExec: false); // socket() without SOCK_CLOEXEC
    }
}
