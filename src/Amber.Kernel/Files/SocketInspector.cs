using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>What a socket of another process is, read from a copy of it (pidfd_getfd).</summary>
public sealed record SocketState(
    int Family, int Type, int Protocol, byte[] LocalAddress, byte[] PeerAddress, bool Connected, bool Listening,
    int Backlog, int AcceptQueue, int QueuedBytes, IReadOnlyList<(int Level, int Name, int Value)> Options)
{
    /// <summary>A TCP socket's state (tcp_info: 1 ESTABLISHED, 2 SYN_SENT … 7 CLOSE, 10 LISTEN); 0 for others.</summary>
    public int TcpState { get; init; }

    /// <summary>SO_LINGER, when it is on: how many seconds a close waits for what is unsent.</summary>
    public int? LingerSeconds { get; init; }

    /// <summary>A TCP socket's congestion control when it is not the system's default (TCP_CONGESTION), else null.</summary>
    public string? Congestion { get; init; }

    public const int TcpSynSent = 2;

    public const int Unix = Interop.AF_UNIX;
    public const int Inet = Interop.AF_INET;
    public const int Inet6 = Interop.AF_INET6;
    public const int Stream = Interop.SOCK_STREAM;
    public const int Datagram = Interop.SOCK_DGRAM;
    public const int SeqPacket = Interop.SOCK_SEQPACKET;
    public const int SocketLevel = Interop.SOL_SOCKET;
    public const int ReuseAddress = Interop.SO_REUSEADDR;
    public const int ReceiveBuffer = Interop.SO_RCVBUF;
    public const int SendBuffer = Interop.SO_SNDBUF;
    public const int ReceiveBufferForce = Interop.SO_RCVBUFFORCE;
    public const int SendBufferForce = Interop.SO_SNDBUFFORCE;
    public const int Netlink = Interop.AF_NETLINK;
    public const int Raw = Interop.SOCK_RAW;
    public const int NetlinkLevel = Interop.SOL_NETLINK;
    public const int NetlinkAddMembership = Interop.NETLINK_ADD_MEMBERSHIP;

    /// <summary>A netlink socket's multicast groups (NETLINK_LIST_MEMBERSHIPS: bit g-1 of word (g-1)/32 for group g); empty for other sockets.</summary>
    public uint[] NetlinkGroups { get; init; } = [];

    /// <summary>A netlink socket's connection: sockaddr_nl of its peer names a port or a group (getpeername says 0, 0 when it has none).</summary>
    public bool NetlinkConnected => NetlinkAddress(PeerAddress) != (0, 0);

    /// <summary>A sockaddr_nl's port id and first 32 groups (family, padding, port, groups); 0, 0 for anything shorter.</summary>
    public static (uint Port, uint Groups) NetlinkAddress(ReadOnlySpan<byte> address) =>
        address.Length >= 12 ? (BitConverter.ToUInt32(address[4..]), BitConverter.ToUInt32(address[8..])) : (0, 0);

    /// <summary>The groups a membership list (<see cref="NetlinkGroups"/>' words) holds, lowest first.</summary>
    public static IEnumerable<int> NetlinkGroupNumbers(IEnumerable<uint> words) =>
        words.SelectMany((word, i) => Enumerable.Range(0, 32).Where(bit => (word & (1u << bit)) != 0).Select(bit => i * 32 + bit + 1));

    /// <summary>The size of the message waiting first on a netlink socket (peeked), 0 if none.</summary>
    public int NetlinkWaiting { get; init; }

    /// <summary>A unix address with a name (a path or an abstract name), not the bare family of an unnamed socket.</summary>
    public static bool IsNamed(ReadOnlySpan<byte> address) => address.Length > 2;

    public string Describe() =>
        $"{Family switch { Unix => "unix", Inet => "TCP/IP", Inet6 => "TCP/IPv6", Netlink => $"netlink (protocol {Protocol})", _ => $"family {Family}" }} " +
        $"{Type switch { Stream => "stream", Datagram => "datagram", SeqPacket => "seqpacket", Raw => "raw", _ => $"type {Type}" }} socket";
}

public static class SocketInspector
{
    // Options whose value is an int and that a restore can set again as they were.
    private static readonly (int Level, int Name)[] Restorable =
    [
        (Interop.SOL_SOCKET, Interop.SO_REUSEADDR), (Interop.SOL_SOCKET, Interop.SO_REUSEPORT),
        (Interop.SOL_SOCKET, Interop.SO_KEEPALIVE), (Interop.SOL_SOCKET, Interop.SO_BROADCAST),
    ];

    /// <param name="inode">The socket's inode: sock_diag tells how many connections wait on a listening unix socket.</param>
    public static unsafe SocketState Inspect(int pid, int fd, ulong inode)
    {
        using var copy = ProcessFiles.GetFd(pid, fd);
        int s = copy.Fd;
        int family = IntOption(s, Interop.SOL_SOCKET, Interop.SO_DOMAIN, pid, fd);
        int type = IntOption(s, Interop.SOL_SOCKET, Interop.SO_TYPE, pid, fd);
        int protocol = IntOption(s, Interop.SOL_SOCKET, Interop.SO_PROTOCOL, pid, fd);
        bool listening = IntOption(s, Interop.SOL_SOCKET, Interop.SO_ACCEPTCONN, pid, fd) != 0;

        var address = new byte[128];
        uint length = (uint)address.Length;
        fixed (byte* a = address)
        {
            if (Interop.Getsockname(s, a, &length) < 0)
                Errnos.Throw("getsockname", $"fd {fd} of process {pid}");
        }
        var local = address.AsSpan(0, (int)Math.Min(length, (uint)address.Length)).ToArray();
        var peer = new byte[128];
        uint peerLength = (uint)peer.Length;
        bool connected;
        fixed (byte* a = peer)
            connected = Interop.Getpeername(s, a, &peerLength) == 0;
        // A packet socket has no peer to name (EOPNOTSUPP): not connected, and refused by its family.
        if (!connected && Marshal.GetLastPInvokeError() is not (Interop.ENOTCONN or Errnos.EOPNOTSUPP))
            Errnos.Throw("getpeername", $"fd {fd} of process {pid}");
        var peerAddress = connected ? peer.AsSpan(0, (int)Math.Min(peerLength, (uint)peer.Length)).ToArray() : [];

        int backlog = 0, acceptQueue = 0, tcpState = 0;
        // A family other than inet (unix, netlink, packet) is not asked about inet options it lacks.
        bool inet = family is Interop.AF_INET or Interop.AF_INET6;
        bool tcp = type == Interop.SOCK_STREAM && inet;
        if (tcp && TcpInfo(s) is { } info)
        {
            tcpState = info.State;
            if (listening)
                (acceptQueue, backlog) = (info.AcceptQueue, info.Backlog);
        }
        if (listening && family == Interop.AF_UNIX)
        {
            var diag = UnixSocketPeers.Describe(inode);
            (acceptQueue, backlog) = ((int)diag.ReceiveQueue, (int)diag.WriteQueue);
        }
        int queued = 0;
        if (!listening && Interop.Ioctl(s, Interop.FIONREAD, &queued) < 0)
            queued = 0;

        var options = new List<(int, int, int)>();
        foreach (var (level, name) in Restorable)
            options.Add((level, name, IntOption(s, level, name, pid, fd)));
        if (tcp)
        {
            foreach (int name in TcpOptions)
                options.Add((Interop.IPPROTO_TCP, name, IntOption(s, Interop.IPPROTO_TCP, name, pid, fd)));
        }
        bool netlink = family == Interop.AF_NETLINK;
        if (inet)
        {
            options.Add((Interop.SOL_SOCKET, Interop.SO_MARK, IntOption(s, Interop.SOL_SOCKET, Interop.SO_MARK, pid, fd)));
            var (level, tos) = family == Interop.AF_INET ? (Interop.IPPROTO_IP, Interop.IP_TOS) : (Interop.IPPROTO_IPV6, Interop.IPV6_TCLASS);
            options.Add((level, tos, IntOption(s, level, tos, pid, fd)));
        }
        if (inet || netlink)
        {
            // Buffer sizes only when they are not what every socket starts with: one the kernel grew
            // by itself would be fixed by setting it (see SocketRestorer).
            foreach (var (name, initial) in new[] { (Interop.SO_RCVBUF, InitialBuffer(type, receive: true)), (Interop.SO_SNDBUF, InitialBuffer(type, receive: false)) })
            {
                int value = IntOption(s, Interop.SOL_SOCKET, name, pid, fd);
                // A connection's are kept whatever they are: its restore grows them to hold its queues.
                if (value != initial || (connected && type == Interop.SOCK_STREAM))
                    options.Add((Interop.SOL_SOCKET, name, value));
            }
        }
        // A UDP socket's own SO_PEEK_OFF, when the program set one: where its next peek starts in the
        // queue the restore fills again. Set before the queue is filled, which does not peek.
        if (type == Interop.SOCK_DGRAM && inet && IntOption(s, Interop.SOL_SOCKET, Interop.SO_PEEK_OFF, pid, fd) is >= 0 and int peekOffset)
            options.Add((Interop.SOL_SOCKET, Interop.SO_PEEK_OFF, peekOffset));
        if (family == Interop.AF_INET6)
            options.Add((Interop.IPPROTO_IPV6, Interop.IPV6_V6ONLY, IntOption(s, Interop.IPPROTO_IPV6, Interop.IPV6_V6ONLY, pid, fd)));
        if (netlink)
        {
            foreach (int name in NetlinkOptions)
                options.Add((Interop.SOL_NETLINK, name, IntOption(s, Interop.SOL_NETLINK, name, pid, fd)));
        }
        return new SocketState(family, type, protocol, local, peerAddress, connected, listening, backlog, acceptQueue, queued, options)
        {
            NetlinkGroups = netlink ? NetlinkMemberships(s, pid, fd) : [],
            NetlinkWaiting = netlink ? Waiting(s) : 0,
            TcpState = tcpState,
            LingerSeconds = inet ? SocketOptions.Linger(s) : null,
            Congestion = tcp && SocketOptions.Congestion(s) is { } congestion && congestion != DefaultCongestion.Value ? congestion : null,
        };
    }

    private static readonly int[] NetlinkOptions =
    [
        Interop.NETLINK_PKTINFO, Interop.NETLINK_BROADCAST_ERROR, Interop.NETLINK_NO_ENOBUFS, Interop.NETLINK_LISTEN_ALL_NSID,
        Interop.NETLINK_CAP_ACK, Interop.NETLINK_EXT_ACK, Interop.NETLINK_GET_STRICT_CHK,
    ];

    /// <summary>The groups a netlink socket listens to, as bitmask words (groups past 32 are not in its address).</summary>
    private static unsafe uint[] NetlinkMemberships(int s, int pid, int fd)
    {
        var words = new uint[64];
        uint length = (uint)(words.Length * sizeof(uint));
        fixed (uint* w = words)
        {
            if (Interop.Getsockopt(s, Interop.SOL_NETLINK, Interop.NETLINK_LIST_MEMBERSHIPS, w, &length) < 0)
                Errnos.Throw("getsockopt(NETLINK_LIST_MEMBERSHIPS)", $"fd {fd} of process {pid}");
        }
        // The kernel says how long the whole list is, which may be more than was asked for.
        int used = (int)Math.Min(length / sizeof(uint), (uint)words.Length);
        while (used > 0 && words[used - 1] == 0)
            used--;
        return words[..used];
    }

    /// <summary>The size of the first message waiting on a datagram-like socket (a peek that takes nothing), 0 if none.</summary>
    private static unsafe int Waiting(int s)
    {
        byte one;
        nint n = Interop.Recv(s, &one, 1, Interop.MSG_PEEK | Interop.MSG_DONTWAIT | Interop.MSG_TRUNC);
        return n > 0 ? (int)n : 0;
    }

    /// <summary>How many connections wait in the accept queue of listening TCP socket <paramref name="fd"/> (amber's own fd).</summary>
    public static int AcceptQueue(int fd) =>
        TcpInfo(fd)?.AcceptQueue ?? throw new KernelCallException("getsockopt(TCP_INFO)", $"socket {fd}", Marshal.GetLastPInvokeError());

    /// <summary>
    /// tcp_info's state (byte 0) and, for a listening socket, its unacked and sacked fields: the
    /// accept queue and the backlog. Null if the kernel refused.
    /// </summary>
    private static unsafe (int State, int AcceptQueue, int Backlog)? TcpInfo(int fd)
    {
        byte* info = stackalloc byte[256];
        uint length = 256;
        if (Interop.Getsockopt(fd, Interop.IPPROTO_TCP, Interop.TCP_INFO, info, &length) < 0 || length < 32)
            return null;
        return (info[0], *(int*)(info + 24), *(int*)(info + 28));
    }

    // TCP_NODELAY first: older images hold it alone, at this place.
    private static readonly int[] TcpOptions =
        [Interop.TCP_NODELAY, Interop.TCP_CORK, Interop.TCP_KEEPIDLE, Interop.TCP_KEEPINTVL, Interop.TCP_KEEPCNT, Interop.TCP_USER_TIMEOUT];

    /// <summary>The size a new socket's buffer has (what getsockopt reports): tcp_rmem/tcp_wmem's default for TCP, rmem/wmem_default otherwise.</summary>
    private static int InitialBuffer(int type, bool receive)
    {
        var sizes = InitialBuffers.Value;
        return type == Interop.SOCK_STREAM ? (receive ? sizes.TcpReceive : sizes.TcpSend) : (receive ? sizes.Receive : sizes.Send);
    }

    private static readonly Lazy<string> DefaultCongestion = new(() => File.ReadAllText("/proc/sys/net/ipv4/tcp_congestion_control").Trim());

    // Read once: a checkpoint inspects every socket under the freeze, and these do not change during one.
    private static readonly Lazy<(int TcpReceive, int TcpSend, int Receive, int Send)> InitialBuffers = new(() =>
        (Sysctl("/proc/sys/net/ipv4/tcp_rmem", 1), Sysctl("/proc/sys/net/ipv4/tcp_wmem", 1),
         Sysctl("/proc/sys/net/core/rmem_default", 0), Sysctl("/proc/sys/net/core/wmem_default", 0)));

    /// <summary>Field <paramref name="index"/> of a sysctl's value; -1 if it cannot be read.</summary>
    private static int Sysctl(string path, int index)
    {
        try
        {
            return int.Parse(File.ReadAllText(path).Split(['\t', ' ', '\n'], StringSplitOptions.RemoveEmptyEntries)[index]);
        }
        catch (Exception e) when (e is IOException or FormatException or IndexOutOfRangeException)
        {
            return -1;
        }
    }

    private static int IntOption(int s, int level, int name, int pid, int fd) => SocketOptions.GetInt(s, level, name, $"fd {fd} of process {pid}");
}
