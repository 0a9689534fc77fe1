using Amber.Checkpoint.Restore;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;
using Google.Protobuf;

namespace Amber.Checkpoint.Resources.Sockets;

/// <summary>
/// Connected unix sockets whose two ends Amber rebuilds as one socketpair: decided once every process
/// is known (<see cref="Resolve"/>), made by the common ancestor of their holders into slots
/// (<see cref="CreateShared"/>), their queues filled once everything is built (<see cref="SocketQueueRestorer"/>).
/// </summary>
public static class SocketPairs
{
    /// <summary>
    /// Connected unix sockets: when both ends are in the checkpoint, the pair is rebuilt once, by the
    /// common ancestor of its holders, with what waits at each end and the shutdown state of each.
    /// One whose peer was closed — or is held outside, which sees it closed once the checkpoint ends
    /// it — is rebuilt as a pair whose second end is closed once the first's queue is filled. One
    /// whose connection waits on a listening socket of the checkpoint is made again unconnected, and
    /// connected again in its turn at restore.
    /// </summary>
    /// <param name="reconnectTo">
    /// Listening sockets outside (a group's registration socket): a connection to one is saved as an
    /// unpaired socket connected to that path again at restore.
    /// </param>
    /// <returns>Warnings: connections to processes outside, which come back closed.</returns>
    public static List<string> Resolve(IReadOnlyList<ProcessImage> processes, IReadOnlySet<string> reconnectTo)
    {
        var warnings = new List<string>();
        var byPid = processes.ToDictionary(p => p.Pid);
        var tree = processes.Select(p => p.Pid).ToHashSet();
        var ends = processes.SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdSocketPair).Select(f => (Process: p, Fd: f))).ToList();
        var inodes = ends.Select(e => e.Fd.SocketInode).ToHashSet();
        foreach (var (process, fd) in ends.Where(e => !inodes.Contains(e.Fd.SocketPeer) && SocketRestorer.UnixPath(e.Fd.Socket.PeerAddress.Span) is { } path && reconnectTo.Contains(path)).ToList())
        {
            if (ProcessFiles.QueuedBytes(process.Pid, fd.Fd) > 0)
                throw new UnsupportedResourceException(process.Pid, $"fd {fd.Fd} ({fd.Description})", $"a connection to {SocketRestorer.UnixPath(fd.Socket.PeerAddress.Span)} with bytes not read yet");
            fd.Kind = FdKind.FdSocket;
            fd.SocketPeer = 0;
            fd.Socket.LocalAddress = ByteString.Empty;
            ends.Remove((process, fd));
        }
        var listeners = processes.SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdSocket && f.Socket.Waiting.Count > 0)).ToList();
        var waiting = listeners.SelectMany(l => l.Socket.Waiting).ToHashSet();
        foreach (var (process, fd) in ends.Where(e => waiting.Contains(e.Fd.SocketInode)).ToList())
        {
            fd.Kind = FdKind.FdSocket;
            fd.SocketPeer = 0;
            fd.Socket.PeerAddress = ByteString.Empty;
            ends.Remove((process, fd));
        }
        foreach (var listener in listeners.DistinctBy(l => l.SocketInode))
        {
            // A client outside is connected again by amber and closed: the program accepts a connection whose peer left.
            var kept = listener.Socket.Waiting.Select(c => inodes.Contains(c) ? c : 0).ToList();
            listener.Socket.Waiting.Clear();
            listener.Socket.Waiting.AddRange(kept);
        }
        foreach (var (process, fd) in ends.Where(e => !inodes.Contains(e.Fd.SocketPeer)))
        {
            if (fd.SocketPeer != 0 && ProcFs.FindFdHolder($"socket:[{fd.SocketPeer}]", _ => true, tree) is { } holder)
                warnings.Add($"process {process.Pid}: fd {fd.Fd} ({fd.Description}) is connected to process {holder.Pid} outside the checkpoint; after a restore its peer has closed it");
            fd.SocketPeer = 0;
        }
        foreach (var pair in ends.GroupBy(e => e.Fd.SocketPeer == 0 ? e.Fd.SocketInode : Math.Min(e.Fd.SocketInode, e.Fd.SocketPeer)))
        {
            foreach (var (_, fd) in pair)
            {
                fd.SocketPair = pair.Key;
                fd.SocketPairSecond = fd.SocketInode != pair.Key;
            }
            var first = pair.First(e => !e.Fd.SocketPairSecond);
            var second = pair.FirstOrDefault(e => e.Fd.SocketPairSecond);
            var image = new SocketPairImage
            {
                Id = pair.Key, Type = first.Fd.Socket.Type, SecondGone = second.Fd is null,
                FirstShutdown = UnixSocketPeers.Describe(first.Fd.SocketInode).Shutdown,
                SecondShutdown = second.Fd is null ? 0 : UnixSocketPeers.Describe(second.Fd.SocketInode).Shutdown,
            };
            SocketQueueDumper.Dump(first.Process, first.Fd, image.FirstQueue, processes);
            if (second.Fd is not null)
                SocketQueueDumper.Dump(second.Process, second.Fd, image.SecondQueue, processes);
            byPid[ProcessTree.CommonAncestor([.. pair.Select(e => e.Process.Pid).Distinct()], byPid)].SocketPairs.Add(image);
        }
        // Datagrams waiting on unix datagram sockets that are not one end of a pair: saved with the first holder.
        foreach (var socket in processes.SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdSocket && f.Socket.Family == SocketState.Unix
                && f.Socket.Type == SocketState.Datagram).Select(f => (Process: p, Fd: f))).GroupBy(e => e.Fd.SocketInode))
        {
            var (process, fd) = socket.First();
            SocketQueueDumper.Dump(process, fd, fd.Socket.Queue, processes);
        }
        return warnings;
    }

    /// <summary>The socket pairs this process creates for itself and the processes below it, each end into its slot.</summary>
    public static void CreateShared(RemoteCalls calls, ProcessImage image, RestoreTree tree)
    {
        foreach (var pair in image.SocketPairs)
        {
            var (first, second) = calls.SocketPair(pair.Type);
            calls.Dup3(first, tree.PairSlots[(pair.Id, false)], closeOnExec: true);
            calls.Dup3(second, tree.PairSlots[(pair.Id, true)], closeOnExec: true);
            calls.Close(first);
            calls.Close(second);
            // No process holds the second end: amber does, until it has filled the first end's queue.
            if (pair.SecondGone)
                tree.GoneEnds[pair.Id] = HeldFile.CopyOf(calls.Memory.Pid, tree.PairSlots[(pair.Id, true)]);
        }
    }
}
