using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// Fills the queues of unix sockets once every process is built, before any runs: each message is
/// sent again, from amber, through a copy of the socket that sent it — the other end of a pair, or
/// the restored socket bound to the sender's address — with the descriptors it carried, taken from
/// the processes that hold them or opened again. Datagram sockets connected by name are connected
/// last, once every receiver is bound and filled.
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
                    pairEnds.TryAdd((fd.SocketPair, fd.SocketPairSecond), (image.Pid, fd.Fd));
                if (fd.Kind != FdKind.FdSocket || fd.Socket.Family != SocketState.Unix)
                    continue;
                if (SocketState.IsNamed(fd.Socket.LocalAddress.Span))
                    named.TryAdd(Convert.ToHexString(fd.Socket.LocalAddress.Span), (image.Pid, fd.Fd));
                sockets.TryAdd(fd.SocketInode, (image.Pid, fd)); // once, whoever else holds it
            }
        }

        foreach (var pair in tree.Creators.SelectMany(i => i.SocketPairs))
        {
            // What waited at one end was sent from the other.
            Fill(pair.FirstQueue, pairEnds[(pair.Id, true)]);
            Fill(pair.SecondQueue, pairEnds[(pair.Id, false)]);
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
                Send(from, message, fd.Socket.LocalAddress.Span, what);
            }
        }
        foreach (var (pid, fd) in sockets.Values.Where(s => !s.Fd.Socket.PeerAddress.IsEmpty && s.Fd.Socket.Type == SocketState.Datagram))
        {
            using var copy = HeldFile.CopyOf(pid, fd.Fd);
            UnixSocketQueue.Connect(copy, fd.Socket.PeerAddress.Span, $"fd {fd.Fd} of process {pid} (to {Describe(fd.Socket.PeerAddress.Span)})");
        }
    }

    private static void Fill(IList<SocketMessage> queue, (int Pid, int Fd) from)
    {
        if (queue.Count == 0)
            return;
        using var sender = HeldFile.CopyOf(from.Pid, from.Fd);
        foreach (var message in queue)
            Send(sender, message, [], $"fd {from.Fd} of process {from.Pid}");
    }

    private static void Send(HeldFile from, SocketMessage message, ReadOnlySpan<byte> destination, string what)
    {
        var carried = new List<HeldFile>();
        try
        {
            foreach (var f in message.Fds)
            {
                carried.Add(f.File is { } file
                    ? HeldFile.Open(file.Path, (int)file.Flags, file.Kind == FdKind.FdRegular ? file.Offset : 0)
                    : HeldFile.CopyOf(f.HolderPid, f.HolderFd));
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
