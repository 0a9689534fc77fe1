using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Resources.Sockets;

/// <summary>
/// Sockets are saved with their family, type, options, address and backlog. A connected unix socket
/// is one end of a pair whose other end must be in the checkpoint (<see cref="SocketPairs"/>),
/// except a datagram socket connected to a named address, which is connected again by that name.
/// What waits in unix sockets is read later, once every process is known (<see cref="SocketQueueDumper"/>).
/// A listening unix socket keeps the connections waiting on it (connected again at restore). An
/// established TCP connection is read with TCP_REPAIR once every process is known, and so are those
/// waiting in a listening TCP socket's accept queue (<see cref="TcpConnections"/>).
/// A UDP socket keeps its peer and the datagrams waiting in it (<see cref="UdpSockets"/>).
/// Anything else carrying a connection or queued data is refused: that state would be lost.
/// </summary>
public static class SocketDumper
{
    /// <param name="st">The fd's stat (of /proc/PID/fd/N), which names the socket by its inode.</param>
    /// <param name="inspected">What <see cref="SocketInspector.Inspect"/> read of it already, if it did.</param>
    public static void Dump(int pid, FdImage image, FileStat st, SocketState? inspected = null)
    {
        var s = inspected ?? SocketInspector.Inspect(pid, image.Fd, st.Inode);
        string what = $"fd {image.Fd} ({image.Description}, a {s.Describe()})";
        bool unix = s.Family == SocketState.Unix;
        if (s.Family == SocketState.Netlink && s.Type is SocketState.Raw or SocketState.Datagram)
        {
            DumpNetlink(pid, image, st, s, what);
            return;
        }
        if (s.Family is not (SocketState.Unix or SocketState.Inet or SocketState.Inet6)
            || s.Type is not (SocketState.Stream or SocketState.Datagram or SocketState.SeqPacket))
            throw new UnsupportedResourceException(pid, what, "a socket of a family or type Amber does not handle");
        if (unix && (s.QueuedBytes > 0 || s.Connected) && UnixSocketQueue.HasPendingError(pid, image.Fd))
            throw new UnsupportedResourceException(pid, what, "a unix socket with an error pending, which reading its queue would take from the program");
        bool connectedByName = unix && s.Connected && s.Type == SocketState.Datagram && SocketState.IsNamed(s.PeerAddress);
        if (unix && s.Connected && !connectedByName)
        {
            // Its peer may be in the checkpoint too: PipeResolver decides once every process is known.
            image.Kind = FdKind.FdSocketPair;
            image.SocketInode = st.Inode;
            image.SocketPeer = UnixSocketPeers.PeerOf(st.Inode);
            // Its address and options too: one whose connection waits on a listener is made again unconnected.
            image.Socket = new SocketImage
            {
                Family = s.Family, Type = s.Type, Protocol = s.Protocol, PeerAddress = Google.Protobuf.ByteString.CopyFrom(s.PeerAddress),
                LocalAddress = Google.Protobuf.ByteString.CopyFrom(s.LocalAddress),
            };
            AddOptions(image.Socket, s);
            return;
        }
        if (TcpConnections.Applies(s))
        {
            // Its state is read once every process is known, all connections in repair mode first (TcpConnections).
            image.Kind = FdKind.FdSocket;
            image.SocketInode = st.Inode;
            image.Socket = new SocketImage
            {
                Family = s.Family, Type = s.Type, Protocol = s.Protocol, LocalAddress = Google.Protobuf.ByteString.CopyFrom(s.LocalAddress),
                PeerAddress = Google.Protobuf.ByteString.CopyFrom(s.PeerAddress), Tcp = new TcpConnectionImage(),
            };
            AddOptions(image.Socket, s);
            return;
        }
        bool udp = UdpSockets.Applies(s);
        if (s.Connected && !connectedByName && !udp)
            throw new UnsupportedResourceException(pid, what, "a connected socket of this kind");
        if (s.TcpState == SocketState.TcpSynSent)
            throw new UnsupportedResourceException(pid, what, "a TCP connect() still in progress (SYN_SENT), which TCP_REPAIR cannot make again");
        var waiting = unix && s.AcceptQueue > 0 ? WaitingConnections(pid, what, st.Inode) : [];
        if (s.QueuedBytes > 0 && !(unix && s.Type == SocketState.Datagram) && !udp)
            throw new UnsupportedResourceException(pid, what, $"a socket with {s.QueuedBytes} bytes queued");
        image.Kind = FdKind.FdSocket;
        image.SocketInode = st.Inode;
        image.Socket = new SocketImage
        {
            Family = s.Family,
            Type = s.Type,
            Protocol = s.Protocol,
            LocalAddress = Google.Protobuf.ByteString.CopyFrom(s.LocalAddress),
            PeerAddress = Google.Protobuf.ByteString.CopyFrom(connectedByName || udp ? s.PeerAddress : []),
            Listening = s.Listening,
            Backlog = s.Backlog,
        };
        image.Socket.Waiting.AddRange(waiting);
        AddOptions(image.Socket, s);
        if (udp)
            UdpSockets.Dump(pid, image.Fd, what, image.Socket);
        if (unix && SocketRestorer.UnixPath(image.Socket) is { } path && FileStat.TryGetNoFollow(path, out var file) && file.IsSocket)
            image.Socket.SocketFile = new FileOwner { Uid = file.Uid, Gid = file.Gid, Mode = file.Mode & 0xfff };
    }

    /// <summary>
    /// A netlink socket of the program's own (route, generic, audit... monitors and requesters): its
    /// protocol, port id, groups, connection and options. A message waiting on it, the kernel's answer
    /// or an event, would be lost: refused (a moment later it has usually been read).
    /// </summary>
    private static void DumpNetlink(int pid, FdImage image, FileStat st, SocketState s, string what)
    {
        if (s.NetlinkWaiting > 0)
            throw new UnsupportedResourceException(pid, what, $"a netlink socket with a message of {s.NetlinkWaiting} bytes waiting") { Passing = true };
        image.Kind = FdKind.FdSocket;
        image.SocketInode = st.Inode;
        image.Socket = new SocketImage
        {
            Family = s.Family, Type = s.Type, Protocol = s.Protocol, LocalAddress = Google.Protobuf.ByteString.CopyFrom(s.LocalAddress),
            PeerAddress = Google.Protobuf.ByteString.CopyFrom(s.NetlinkConnected ? s.PeerAddress : []),
        };
        image.Socket.NetlinkGroups.AddRange(s.NetlinkGroups);
        AddOptions(image.Socket, s);
    }

    private static void AddOptions(SocketImage image, SocketState s)
    {
        if (s.LingerSeconds is int linger)
            (image.LingerOn, image.LingerSeconds) = (true, linger);
        image.Congestion = s.Congestion ?? "";
        foreach (var (level, name, value) in s.Options)
            image.Options.Add(new SocketOption { Level = level, Name = name, Value = value });
    }

    /// <summary>
    /// The connections waiting on a listening unix socket, oldest first, by the socket that connected.
    /// What a client sent waits in a socket no process holds until it is accepted, which amber cannot
    /// read without taking the connection from the program: a connection with bytes sent, or whose
    /// client closed it (whether it sent anything cannot be told), is refused.
    /// </summary>
    private static List<ulong> WaitingConnections(int pid, string what, ulong listener)
    {
        var clients = UnixSocketPeers.Describe(listener).Waiting;
        foreach (ulong client in clients)
        {
            if (client == 0)
                throw new UnsupportedResourceException(pid, what, "a listening socket with a connection waiting to be accepted whose client has closed it (what it sent cannot be read without accepting it)");
            // Unaccepted, the connection's own socket has no inode to ask about: what the client sent
            // shows as its own unread sends (counted with the kernel's overhead).
            if (UnixSocketPeers.Describe(client).WriteQueue > 0)
                throw new UnsupportedResourceException(pid, what, "a listening socket with a connection waiting to be accepted that its client sent bytes on (they cannot be read without accepting it)");
        }
        return [.. clients];
    }
}
