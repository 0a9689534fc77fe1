using Amber.Image.Schema;
using Amber.Kernel.Files;
using Google.Protobuf;

namespace Amber.Checkpoint.Files;

/// <summary>
/// Decides what each pipe of a checkpointed tree is, once every process's fds are known:
/// <list type="bullet">
/// <item>both ends in one process only: rebuilt inside it (<see cref="ProcessImage.Pipes"/>);</item>
/// <item>ends in several processes of the tree: rebuilt once, by their lowest common ancestor, before
/// it forks them, so they inherit one pipe (<see cref="ProcessImage.SharedPipes"/>) — a shell pipeline;</item>
/// <item>an end whose other end is outside the tree: stdio (fds 0-2) is external; elsewhere refused.</item>
/// </list>
/// The bytes queued in a pipe are read without consuming them (tee) from one of its read ends.
/// </summary>
public static class PipeResolver
{
    public static void Resolve(IReadOnlyList<ProcessImage> processes)
    {
        var byPid = processes.ToDictionary(p => p.Pid);
        var ends = processes.SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdPipe).Select(f => (Process: p, Fd: f)))
            .GroupBy(e => e.Fd.PipeId);
        foreach (var pipe in ends)
        {
            var reader = pipe.FirstOrDefault(e => !e.Fd.PipeWriteEnd);
            bool bothEnds = reader.Fd is not null && pipe.Any(e => e.Fd.PipeWriteEnd);
            if (!bothEnds)
            {
                foreach (var (process, fd) in pipe)
                {
                    if (fd.Fd > 2)
                        throw new UnsupportedResourceException(process.Pid, $"fd {fd.Fd} ({fd.Description})", "a pipe whose other end is outside the checkpointed processes");
                    fd.Kind = FdKind.FdExternal;
                    fd.PipeId = 0;
                    fd.PipeWriteEnd = false;
                }
                continue;
            }
            var (data, capacity) = ProcessFiles.PeekPipe(reader.Process.Pid, reader.Fd!.Fd);
            var image = new PipeImage { Id = pipe.Key, Capacity = (uint)capacity, Data = ByteString.CopyFrom(data) };
            var holders = pipe.Select(e => e.Process.Pid).Distinct().ToList();
            if (holders.Count == 1)
                byPid[holders[0]].Pipes.Add(image);
            else
                byPid[CommonAncestor(holders, byPid)].SharedPipes.Add(image);
        }
    }

    /// <summary>
    /// Named FIFOs are reopened by path at restore; the bytes queued in each are saved once, read
    /// (without consuming them) through a read end the tree holds, or one amber opens for the purpose.
    /// </summary>
    public static void ResolveFifos(IReadOnlyList<ProcessImage> processes)
    {
        foreach (var fifo in processes.SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdFifo).Select(f => (Process: p, Fd: f))).GroupBy(e => e.Fd.PipeId))
        {
            var first = fifo.First();
            var reader = fifo.FirstOrDefault(e => (e.Fd.Flags & 3) != 1);
            var (data, capacity) = reader.Fd is not null
                ? ProcessFiles.PeekPipe(reader.Process.Pid, reader.Fd.Fd)
                : ProcessFiles.PeekFifo(first.Fd.Path);
            first.Process.Fifos.Add(new PipeImage { Id = fifo.Key, Capacity = (uint)capacity, Data = ByteString.CopyFrom(data) });
        }
    }

    /// <summary>
    /// Connected unix sockets: when both ends are in the checkpoint, the pair is rebuilt once, by the
    /// common ancestor of its holders, with what waits at each end; otherwise refused.
    /// </summary>
    /// <param name="reconnectTo">
    /// Listening sockets outside (a group's registration socket): a connection to one is saved as an
    /// unpaired socket connected to that path again at restore.
    /// </param>
    public static void ResolveSocketPairs(IReadOnlyList<ProcessImage> processes, IReadOnlySet<string> reconnectTo)
    {
        var byPid = processes.ToDictionary(p => p.Pid);
        var ends = processes.SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdSocketPair).Select(f => (Process: p, Fd: f))).ToList();
        var inodes = ends.Select(e => e.Fd.SocketInode).ToHashSet();
        foreach (var (process, fd) in ends.Where(e => !inodes.Contains(e.Fd.SocketPeer) && UnixPath(e.Fd.Socket.PeerAddress.Span) is { } path && reconnectTo.Contains(path)).ToList())
        {
            if (ProcessFiles.QueuedBytes(process.Pid, fd.Fd) > 0)
                throw new UnsupportedResourceException(process.Pid, $"fd {fd.Fd} ({fd.Description})", $"a connection to {UnixPath(fd.Socket.PeerAddress.Span)} with bytes not read yet");
            fd.Kind = FdKind.FdSocket;
            fd.SocketPeer = 0;
            ends.Remove((process, fd));
        }
        foreach (var pair in ends.GroupBy(e => Math.Min(e.Fd.SocketInode, e.Fd.SocketPeer)))
        {
            foreach (var (process, fd) in pair)
            {
                if (fd.SocketPeer == 0 || !inodes.Contains(fd.SocketPeer))
                    throw new UnsupportedResourceException(process.Pid, $"fd {fd.Fd} ({fd.Description})", "a unix socket connected to a socket outside the checkpointed processes");
                fd.SocketPair = pair.Key;
                fd.SocketPairSecond = fd.SocketInode != pair.Key;
            }
            var first = pair.First(e => !e.Fd.SocketPairSecond);
            var second = pair.First(e => e.Fd.SocketPairSecond);
            var image = new SocketPairImage { Id = pair.Key, Type = first.Fd.Socket.Type };
            SocketQueueDumper.Dump(first.Process, first.Fd, image.FirstQueue, processes);
            SocketQueueDumper.Dump(second.Process, second.Fd, image.SecondQueue, processes);
            byPid[CommonAncestor([.. pair.Select(e => e.Process.Pid).Distinct()], byPid)].SocketPairs.Add(image);
        }
        // Datagrams waiting on unix datagram sockets that are not one end of a pair: saved with the first holder.
        foreach (var socket in processes.SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdSocket && f.Socket.Family == SocketState.Unix
                && f.Socket.Type == SocketState.Datagram).Select(f => (Process: p, Fd: f))).GroupBy(e => e.Fd.SocketInode))
        {
            var (process, fd) = socket.First();
            SocketQueueDumper.Dump(process, fd, fd.Socket.Queue, processes);
        }
    }

    /// <summary>
    /// The lowest process of the tree that is an ancestor of (or one of) all <paramref name="pids"/>;
    /// 0 — the forest of a group checkpoint (<see cref="ImageNames.Forest"/>) — when they are in different trees.
    /// </summary>
    public static int CommonAncestor(IReadOnlyList<int> pids, IReadOnlyDictionary<int, ProcessImage> byPid)
    {
        List<int> Chain(int pid)
        {
            var chain = new List<int>();
            for (int at = pid; at != 0 && byPid.ContainsKey(at); at = byPid[at].Ppid)
                chain.Add(at);
            return chain;
        }
        var common = Chain(pids[0]);
        foreach (int pid in pids.Skip(1))
        {
            var chain = Chain(pid).ToHashSet();
            common = [.. common.Where(chain.Contains)];
        }
        if (common.Count > 0)
            return common[0];
        if (!byPid.ContainsKey(0))
            throw new InvalidOperationException($"processes {string.Join(", ", pids)} have no common ancestor and there is no forest");
        return 0;
    }

    /// <summary>The file-system path of a unix address, or null (unnamed or abstract).</summary>
    private static string? UnixPath(ReadOnlySpan<byte> address)
    {
        if (address.Length <= 2 || address[2] == 0)
            return null;
        var path = address[2..];
        int nul = path.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(nul < 0 ? path : path[..nul]);
    }
}
