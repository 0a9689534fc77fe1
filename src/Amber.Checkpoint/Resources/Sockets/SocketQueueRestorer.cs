using Amber.Checkpoint.Restore;
using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Resources.Sockets;

/// <summary>
/// Fills the queues of unix sockets once every process is built, before any runs: each message is
/// sent again, from amber, through a copy of the socket that sent it — the other end of a pair, or
/// the restored socket bound to the sender's address — with the descriptors it carried, taken from
/// the processes that hold them or opened again; a pair's ends are then shut down as they were, and
/// an end whose peer had closed sees it close again. Connections that waited on a listening socket
/// are made again in their order (by amber: the listener sees amber's credentials, SO_PEERCRED).
/// Datagram sockets connected by name are connected last, once every receiver is bound and filled.
/// </summary>
public static class SocketQueueRestorer
{
    public static void Restore(RestoreTree tree, List<string> warnings)
    {
        var live = tree.Images.Where(i => !i.Zombie).ToList();
        var pairEnds = new Dictionary<(ulong, bool), (int Pid, int Fd)>();
        var named = new Dictionary<string, (int Pid, int Fd)>();
        var sockets = new Dictionary<ulong, (int Pid, FdImage Fd)>();
        foreach (var image in live)
        {
            foreach (var fd in image.Fds)
            {
                if (fd.Kind == FdKind.FdSocketPair)
                    pairEnds.TryAdd((fd.SocketPair, fd.SocketPairSecond), (tree.HostId(image.Pid), fd.Fd));
                if (fd.Kind != FdKind.FdSocket || fd.Socket.Family != SocketState.Unix)
                    continue;
                if (SocketState.IsNamed(fd.Socket.LocalAddress.Span))
                    named.TryAdd(Convert.ToHexString(fd.Socket.LocalAddress.Span), (tree.HostId(image.Pid), fd.Fd));
                sockets.TryAdd(fd.SocketInode, (tree.HostId(image.Pid), fd)); // once, whoever else holds it
            }
        }

        foreach (var pair in tree.Creators.SelectMany(i => i.SocketPairs))
        {
            // What waited at one end was sent from the other; then each end is shut down as it was.
            using (var second = pair.SecondGone ? null : HeldFile.CopyOf(pairEnds[(pair.Id, true)].Pid, pairEnds[(pair.Id, true)].Fd))
            {
                var first = pairEnds[(pair.Id, false)];
                using var firstCopy = HeldFile.CopyOf(first.Pid, first.Fd);
                var secondEnd = second ?? tree.GoneEnds[pair.Id];
                Fill(tree, pair.FirstQueue, secondEnd, $"socket pair {pair.Id}");
                Fill(tree, pair.SecondQueue, firstCopy, $"fd {first.Fd} of process {first.Pid}");
                UnixSocketQueue.Shutdown(firstCopy, pair.FirstShutdown, $"fd {first.Fd} of process {first.Pid}");
                if (second is not null)
                    UnixSocketQueue.Shutdown(second, pair.SecondShutdown, $"socket pair {pair.Id}");
            }
            // A peer that had closed closes now: the first end sees end-of-file and EPIPE, as before.
            if (tree.GoneEnds.Remove(pair.Id, out var gone))
                gone.Dispose();
        }
        // Connections waiting on listening sockets, connected again in the order they were made.
        foreach (var (pid, fd) in sockets.Values.Where(s => s.Fd.Socket.Waiting.Count > 0))
        {
            foreach (ulong client in fd.Socket.Waiting)
            {
                using var socket = client != 0 && sockets.TryGetValue(client, out var c) ? HeldFile.CopyOf(c.Pid, c.Fd.Fd) : UnixSocketQueue.Unnamed(fd.Socket.Type);
                UnixSocketQueue.Connect(socket, fd.Socket.LocalAddress.Span, $"a connection waiting on fd {fd.Fd} of process {pid}");
            }
        }
        foreach (var (pid, fd) in sockets.Values.Where(s => s.Fd.Socket.Queue.Count > 0))
        {
            string what = $"fd {fd.Fd} of process {pid}";
            foreach (var message in fd.Socket.Queue)
            {
                var sender = SocketState.IsNamed(message.Sender.Span) && named.TryGetValue(Convert.ToHexString(message.Sender.Span), out var s) ? s : ((int, int)?)null;
                if (sender is null && SocketState.IsNamed(message.Sender.Span))
                    warnings.Add($"{what}: a datagram waiting on it came from {Describe(message.Sender.Span)}, which is not restored; it now comes from an unnamed socket");
                using var from = sender is { } h ? HeldFile.CopyOf(h.Item1, h.Item2) : UnixSocketQueue.Unnamed(fd.Socket.Type);
                Send(tree, from, message, fd.Socket.LocalAddress.Span, what);
            }
        }
        foreach (var (pid, fd) in sockets.Values.Where(s => !s.Fd.Socket.PeerAddress.IsEmpty && s.Fd.Socket.Type == SocketState.Datagram))
        {
            using var copy = HeldFile.CopyOf(pid, fd.Fd);
            UnixSocketQueue.Connect(copy, fd.Socket.PeerAddress.Span, $"fd {fd.Fd} of process {pid} (to {Describe(fd.Socket.PeerAddress.Span)})");
        }
    }

    private static void Fill(RestoreTree tree, IList<SocketMessage> queue, HeldFile sender, string what)
    {
        foreach (var message in queue)
            Send(tree, sender, message, [], what);
    }

    private static void Send(RestoreTree tree, HeldFile from, SocketMessage message, ReadOnlySpan<byte> destination, string what)
    {
        var carried = new List<HeldFile>();
        try
        {
            foreach (var f in message.Fds)
            {
                carried.Add(f.File is { } file
                    ? HeldFile.Open(file.Path, (int)file.Flags, file.Kind == FdKind.FdRegular ? file.Offset : 0)
                    : HeldFile.CopyOf(tree.HostId(f.HolderPid), f.HolderFd));
            }
            UnixSocketQueue.Send(from, message.Data.Span, carried, destination, what);
        }
        finally
        {
            foreach (var c in carried)
                c.Dispose();
        }
    }

    private static string Describe(ReadOnlySpan<byte> address) =>
        address.Length > 3 && address[2] == 0
            ? "@" + System.Text.Encoding.UTF8.GetString(address[3..]).TrimEnd('\0')
            : System.Text.Encoding.UTF8.GetString(address[2..]).TrimEnd('\0');
}
