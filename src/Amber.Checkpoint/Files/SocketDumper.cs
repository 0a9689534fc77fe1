using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Files;

/// <summary>
/// Sockets that are not connected (listening, bound, or new) are saved with their family, type,
/// options, address and backlog. Anything carrying a connection or queued data is refused: that
/// state would be lost.
/// </summary>
public static class SocketDumper
{
    public static void Dump(int pid, FdImage image)
    {
        var s = SocketInspector.Inspect(pid, image.Fd);
        string what = $"fd {image.Fd} ({image.Description}, a {s.Describe()})";
        if (s.Connected && s.Family == SocketState.Unix)
        {
            // Its peer may be in the checkpoint too: PipeResolver decides once every process is known.
            if (!FileStat.TryGet($"/proc/{pid}/fd/{image.Fd}", out var st))
                throw new Kernel.TargetGoneException(pid);
            if (s.QueuedBytes > 0 && s.Type != SocketState.Stream)
                throw new UnsupportedResourceException(pid, what, $"a {s.Describe()} with {s.QueuedBytes} bytes of messages queued");
            if (s.QueuedBytes > 0 && UnixSocketPeers.CarriesDescriptors(pid, image.Fd))
                throw new UnsupportedResourceException(pid, what, "a unix socket with file descriptors in flight (SCM_RIGHTS)");
            image.Kind = FdKind.FdSocketPair;
            image.SocketInode = st.Inode;
            image.SocketPeer = UnixSocketPeers.PeerOf(st.Inode);
            image.Socket = new SocketImage { Family = s.Family, Type = s.Type, Protocol = s.Protocol };
            return;
        }
        if (s.Family is not (SocketState.Unix or SocketState.Inet or SocketState.Inet6)
            || s.Type is not (SocketState.Stream or SocketState.Datagram or SocketState.SeqPacket))
            throw new UnsupportedResourceException(pid, what, "a socket of a family or type Amber does not handle");
        if (s.Connected)
            throw new UnsupportedResourceException(pid, what, s.Family == SocketState.Unix ? "a connected unix socket" : "an established connection",
                s.Family == SocketState.Unix ? null : "TCP connections come with live migration");
        if (s.AcceptQueue > 0)
            throw new UnsupportedResourceException(pid, what, $"a listening socket with {s.AcceptQueue} connection(s) waiting to be accepted");
        if (s.QueuedBytes > 0)
            throw new UnsupportedResourceException(pid, what, $"a socket with {s.QueuedBytes} bytes queued");
        image.Kind = FdKind.FdSocket;
        image.Socket = new SocketImage
        {
            Family = s.Family,
            Type = s.Type,
            Protocol = s.Protocol,
            LocalAddress = Google.Protobuf.ByteString.CopyFrom(s.LocalAddress),
            Listening = s.Listening,
            Backlog = s.Backlog,
        };
        foreach (var (level, name, value) in s.Options)
            image.Socket.Options.Add(new SocketOption { Level = level, Name = name, Value = value });
    }
}
