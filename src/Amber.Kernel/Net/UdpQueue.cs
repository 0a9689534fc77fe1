using System.Diagnostics;
using System.Net;
using System.Net.NetworkInformation;
using System.Runtime.InteropServices;
using Amber.Kernel.Files;
using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>
/// A datagram waiting in a UDP socket's receive queue: its bytes, the address and port it came from
/// (as recvfrom gives them) and the address it was sent to, with the socket's port (as IP_PKTINFO gives it).
/// </summary>
public sealed record QueuedDatagram(byte[] Data, byte[] Source, byte[] Destination);

/// <summary>
/// Reads the receive queue of a UDP socket of another process without consuming it, and fills the
/// queue of a restored socket again.
/// <para>
/// Reading: datagrams are peeked one after another at a moving SO_PEEK_OFF, the sum of the lengths
/// before them. Measured on this kernel (6.18, docs/kernel.md §18): a peek at an offset skips exactly the datagrams that
/// the offset covers and returns the next one whole, with its sender; a zero-length datagram is
/// returned once, then skipped by every later peek at an offset (the kernel marks it peeked), so one
/// already peeked by the program, or by an earlier checkpoint that left it running, cannot be seen.
/// The destination comes from IP_PKTINFO (IPV6_RECVPKTINFO), switched on for the moment: the kernel
/// gives it from the datagram's own header even for one that arrived before. Both options are put
/// back as they were.
/// </para>
/// <para>
/// Filling: each datagram is sent again as its sender sent it (<see cref="PeerDatagram"/>), one at a
/// time, each waited for in the socket (SO_MEMINFO: its receive memory grows) so the order is kept.
/// One the socket dropped for want of room is sent again after its buffer is enlarged, which is put
/// back afterwards.
/// </para>
/// </summary>
public static class UdpQueue
{
    private const int BufferSize = 1 << 16;      // a UDP datagram carries at most 65535 bytes
    private const int ControlSize = 1024;
    private const int SockaddrSize = 28;         // sockaddr_in6, the larger
    private const int CmsgHeaderSize = 16;
    private const int MaxDatagrams = 1 << 20;
    private const int PeekOffsetDisabled = -1;
    private const int MaxRetries = 8;
    private static readonly TimeSpan DeliveryWait = TimeSpan.FromSeconds(2);

    /// <summary>The mark of the packets amber forges (the one TcpRepair uses), so a firewall can let them through.</summary>
    public const int Mark = TcpRepair.PeerSegmentMark;

    /// <summary>
    /// Whether an error is pending on a socket of another process (an ICMP error it was told of, or
    /// IP_RECVERR's error queue). A peek takes a pending error first and clears it.
    /// </summary>
    public static bool HasPendingError(int pid, int fd)
    {
        using var copy = ProcessFiles.GetFd(pid, fd);
        return (PollEvents(copy.Fd, $"fd {fd} of process {pid}") & Interop.POLLERR) != 0;
    }

    /// <summary>Everything waiting on UDP socket <paramref name="fd"/> of <paramref name="pid"/>, oldest first, left in place.</summary>
    public static unsafe List<QueuedDatagram> Peek(int pid, int fd)
    {
        string target = $"fd {fd} of process {pid}";
        using var copy = ProcessFiles.GetFd(pid, fd);
        int s = copy.Fd;
        short events = PollEvents(s, target);
        if ((events & Interop.POLLIN) == 0)
            return [];
        if ((events & Interop.POLLERR) != 0)
            throw new InvalidOperationException($"{target} has an error pending: check HasPendingError before peeking");
        var local = LocalAddress(s, target);
        bool v6 = BitConverter.ToUInt16(local) == Interop.AF_INET6;
        var (infoLevel, infoName) = v6 ? (Interop.IPPROTO_IPV6, Interop.IPV6_RECVPKTINFO) : (Interop.IPPROTO_IP, Interop.IP_PKTINFO);
        int oldOffset = GetInt(s, Interop.SOL_SOCKET, Interop.SO_PEEK_OFF, target);
        int oldInfo = GetInt(s, infoLevel, infoName, target);
        var datagrams = new List<QueuedDatagram>();
        try
        {
            SetInt(s, infoLevel, infoName, 1, target);
            var buffer = new byte[BufferSize];
            var control = new byte[ControlSize];
            var name = new byte[SockaddrSize];
            long offset = 0;
            while (true)
            {
                if (datagrams.Count == MaxDatagrams)
                    throw new KernelCallException("recvmsg(MSG_PEEK)", $"{target}: more than {MaxDatagrams} datagrams queued", Errnos.ENOMEM);
                SetInt(s, Interop.SOL_SOCKET, Interop.SO_PEEK_OFF, (int)offset, target);
                Msghdr header;
                nint n;
                fixed (byte* b = buffer, c = control, a = name)
                {
                    var iov = new Iovec { iov_base = (nint)b, iov_len = (nuint)buffer.Length };
                    header = new Msghdr
                    {
                        msg_name = a, msg_namelen = SockaddrSize, msg_iov = &iov, msg_iovlen = 1,
                        msg_control = c, msg_controllen = ControlSize,
                    };
                    do
                    {
                        n = Interop.Recvmsg(s, &header, Interop.MSG_PEEK | Interop.MSG_DONTWAIT);
                    }
                    while (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR);
                }
                if (n < 0)
                {
                    if (Marshal.GetLastPInvokeError() == Errnos.EAGAIN)
                        break;
                    Errnos.Throw("recvmsg(MSG_PEEK)", target);
                }
                if ((header.msg_flags & (Interop.MSG_TRUNC | Interop.MSG_CTRUNC)) != 0)
                    throw new KernelCallException("recvmsg(MSG_PEEK)", $"{target}: a datagram or its control data did not fit", Errnos.ENOMEM);
                var source = name.AsSpan(0, (int)Math.Min(header.msg_namelen, (uint)SockaddrSize)).ToArray();
                var destination = Destination(control.AsSpan(0, (int)header.msg_controllen), local);
                datagrams.Add(new QueuedDatagram(buffer.AsSpan(0, (int)n).ToArray(), source, destination));
                offset += n;
            }
            return datagrams;
        }
        finally
        {
            SetInt(s, Interop.SOL_SOCKET, Interop.SO_PEEK_OFF, oldOffset < 0 ? PeekOffsetDisabled : oldOffset, target);
            SetInt(s, infoLevel, infoName, oldInfo, target);
        }
    }

    /// <summary>The most bytes a datagram to <paramref name="destination"/> may carry to be sent again.</summary>
    public static int MaxData(ReadOnlySpan<byte> destination) => PeerDatagram.MaxPayload(IsV6(destination));

    /// <summary>
    /// Whether a datagram sent to <paramref name="destination"/> can be sent there again without
    /// leaving this host: a loopback address or one of its interfaces' unicast addresses (not a
    /// broadcast or multicast one, which other sockets, or other hosts, would receive too).
    /// </summary>
    public static bool IsLocalUnicast(ReadOnlySpan<byte> destination)
    {
        var ip = Address(destination);
        if (IPAddress.IsLoopback(ip))
            return true;
        return NetworkInterface.GetAllNetworkInterfaces()
            .SelectMany(i => i.GetIPProperties().UnicastAddresses)
            .Any(u => u.Address.Equals(ip));
    }

    /// <summary>"127.0.0.1:5432", "[::1]:80"; a v4-mapped address as IPv4.</summary>
    public static string Describe(ReadOnlySpan<byte> address) => Endpoint.Of(address).ToString();

    /// <summary>Whether every datagram came from <paramref name="peer"/> (a connected socket takes no other).</summary>
    public static bool AllFrom(IEnumerable<QueuedDatagram> datagrams, ReadOnlySpan<byte> peer)
    {
        foreach (var d in datagrams)
        {
            if (!PeerDatagram.SameEndpoint(d.Source, peer))
                return false;
        }
        return true;
    }

    /// <summary>
    /// Puts <paramref name="datagrams"/> in the receive queue of <paramref name="socket"/> (amber's copy
    /// of a restored socket, bound, not yet running), in order, each from its source.
    /// </summary>
    public static void Fill(HeldFile socket, IReadOnlyList<QueuedDatagram> datagrams, string target)
    {
        int s = socket.Fd;
        int originalBuffer = -1;
        try
        {
            foreach (var d in datagrams)
            {
                for (int attempt = 0; ; attempt++)
                {
                    var before = MemInfo(s, target);
                    PeerDatagram.Send(d.Source, d.Destination, d.Data, Mark);
                    if (Delivered(s, before, target))
                        break;
                    // Dropped: the socket's buffer is full of what was put back so far; give it room (root may exceed rmem_max).
                    int current = GetInt(s, Interop.SOL_SOCKET, Interop.SO_RCVBUF, target);
                    if (originalBuffer < 0)
                        originalBuffer = current;
                    if (attempt == MaxRetries)
                        throw new KernelCallException("sendto", $"{target}: a datagram from {Describe(d.Source)} was dropped {MaxRetries + 1} times", Errnos.ENOMEM);
                    SetInt(s, Interop.SOL_SOCKET, Interop.SO_RCVBUFFORCE, current + 2 * (d.Data.Length + BufferSize), target);
                }
            }
        }
        finally
        {
            if (originalBuffer >= 0)
                SetInt(s, Interop.SOL_SOCKET, Interop.SO_RCVBUFFORCE, originalBuffer / 2, target); // the kernel doubles what it is given
        }
    }

    /// <summary>Waits until the datagram just sent is queued (true) or dropped (false).</summary>
    private static bool Delivered(int s, (uint Memory, uint Drops) before, string target)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var now = MemInfo(s, target);
            if (now.Drops != before.Drops)
                return false;
            if (now.Memory != before.Memory)
                return true;
            if (clock.Elapsed > DeliveryWait)
                throw new KernelCallException("sendto", $"{target}: a datagram sent through a raw socket did not arrive in {DeliveryWait.TotalSeconds:0} s (a firewall must let packets with mark 0x{Mark:x} through)", Errnos.EAGAIN);
            Thread.Yield();
        }
    }

    private static unsafe (uint Memory, uint Drops) MemInfo(int s, string target)
    {
        uint* info = stackalloc uint[Interop.SK_MEMINFO_VARS];
        uint length = Interop.SK_MEMINFO_VARS * sizeof(uint);
        if (Interop.Getsockopt(s, Interop.SOL_SOCKET, Interop.SO_MEMINFO, info, &length) < 0)
            Errnos.Throw("getsockopt(SO_MEMINFO)", target);
        return (info[Interop.SK_MEMINFO_RMEM_ALLOC], info[Interop.SK_MEMINFO_DROPS]);
    }

    /// <summary>The datagram's destination out of its IP_PKTINFO or IPV6_PKTINFO, with the socket's port; the socket's own address if there is none.</summary>
    private static byte[] Destination(ReadOnlySpan<byte> control, byte[] local)
    {
        var destination = (byte[])local.Clone();
        for (int at = 0; at + CmsgHeaderSize <= control.Length;)
        {
            int length = (int)Math.Min(BitConverter.ToUInt64(control[at..]), (ulong)(control.Length - at));
            if (length < CmsgHeaderSize)
                break;
            int level = BitConverter.ToInt32(control[(at + 8)..]);
            int type = BitConverter.ToInt32(control[(at + 12)..]);
            var data = control.Slice(at + CmsgHeaderSize, length - CmsgHeaderSize);
            // struct in_pktinfo { int ifindex; in_addr spec_dst; in_addr addr; }; struct in6_pktinfo { in6_addr addr; int ifindex; }
            if (level == Interop.IPPROTO_IP && type == Interop.IP_PKTINFO && data.Length >= 12 && !IsV6(local))
                data.Slice(8, 4).CopyTo(destination.AsSpan(4));
            else if (level == Interop.IPPROTO_IPV6 && type == Interop.IPV6_PKTINFO && data.Length >= 16 && IsV6(local))
                data[..16].CopyTo(destination.AsSpan(8));
            at += (length + 7) & ~7;
        }
        return destination;
    }

    private static bool IsV6(ReadOnlySpan<byte> sockaddr) => BitConverter.ToUInt16(sockaddr) == Interop.AF_INET6;

    private static IPAddress Address(ReadOnlySpan<byte> sockaddr)
    {
        var ip = IsV6(sockaddr) ? new IPAddress(sockaddr.Slice(8, 16)) : new IPAddress(sockaddr.Slice(4, 4));
        return ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip;
    }

    private static byte[] LocalAddress(int s, string target)
    {
        var address = new byte[SockaddrSize];
        uint length = SockaddrSize;
        if (Interop.Getsockname(s, address, ref length) < 0)
            Errnos.Throw("getsockname", target);
        return address.AsSpan(0, (int)Math.Min(length, (uint)SockaddrSize)).ToArray();
    }

    private static unsafe short PollEvents(int s, string target)
    {
        var p = new Pollfd { fd = s, events = Interop.POLLIN };
        int rv;
        do
        {
            rv = Interop.Poll(&p, 1, 0);
        }
        while (rv < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR);
        Errnos.Check(rv, "poll", target);
        return p.revents;
    }

    private static int GetInt(int s, int level, int name, string target) => SocketOptions.GetInt(s, level, name, target);

    private static void SetInt(int s, int level, int name, int value, string target) => SocketOptions.SetInt(s, level, name, value, target);
}
