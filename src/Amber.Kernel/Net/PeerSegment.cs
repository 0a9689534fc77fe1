using System.Buffers.Binary;
using System.Net;
using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>
/// A TCP segment made up as if the peer of a connection had sent it, handed to this host's own stack
/// through a raw socket: how a socket rebuilt with TCP_REPAIR gets the peer's FIN, or the
/// acknowledgment of its own FIN, which no socket option puts in place (CRIU's libsoccr does the same
/// with libnet). IPv4, also for a v4-mapped address, or IPv6; no TCP options. The destination is an
/// address of this host, so the packet never leaves it.
/// </summary>
internal static class PeerSegment
{
    public const byte Fin = 0x01;
    public const byte Ack = 0x10;

    private const int Ipv4Header = 20;
    private const int Ipv6Header = 40;
    private const int TcpHeader = 20;
    private const byte HopLimit = 64;
    private const ushort DontFragment = 0x4000;

    /// <summary>
    /// Sends the segment from <paramref name="remote"/> to <paramref name="local"/> (sockaddr bytes of the
    /// rebuilt socket), marked with <paramref name="mark"/> so a firewall that keeps the connection's
    /// packets off the stack can let it through.
    /// </summary>
    public static void Send(ReadOnlySpan<byte> local, ReadOnlySpan<byte> remote, uint sequence, uint acknowledgment, byte flags, ushort window, int mark)
    {
        var to = Endpoint.Of(local);
        var from = Endpoint.Of(remote);
        if (to.V6 != from.V6)
            throw new ArgumentException($"a segment from {from} to {to}: the two addresses are not of one family");
        Span<byte> packet = stackalloc byte[Ipv6Header + TcpHeader];
        packet = to.V6 ? Ipv6(packet, from, to) : Ipv4(packet, from, to);
        var tcp = packet[^TcpHeader..];
        BinaryPrimitives.WriteUInt16BigEndian(tcp, from.Port);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], to.Port);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], sequence);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], acknowledgment);
        tcp[12] = TcpHeader / 4 << 4; // data offset, in 32-bit words
        tcp[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], window);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], Checksum(PseudoHeaderSum(from, to), tcp));

        string target = $"a raw socket, {from} to {to}";
        int fd = Errnos.Check(Interop.Socket(to.V6 ? Interop.AF_INET6 : Interop.AF_INET, Interop.SOCK_RAW | Interop.SOCK_CLOEXEC, Interop.IPPROTO_RAW),
            "socket(SOCK_RAW)", target);
        using var raw = new SafeFdHandle(fd);
        Errnos.Check(Interop.Setsockopt(fd, Interop.SOL_SOCKET, Interop.SO_MARK, BitConverter.GetBytes(mark), sizeof(int)), "setsockopt(SO_MARK)", target);
        Span<byte> destination = stackalloc byte[to.V6 ? 28 : 16];
        to.WriteSockaddr(destination);
        nint sent = Interop.Sendto(fd, packet, (nuint)packet.Length, 0, destination, (uint)destination.Length);
        Errnos.Check((long)sent, "sendto", target);
    }

    private static Span<byte> Ipv4(Span<byte> packet, Endpoint from, Endpoint to)
    {
        packet = packet[..(Ipv4Header + TcpHeader)];
        packet.Clear();
        packet[0] = 0x45; // version 4, header of 5 words
        BinaryPrimitives.WriteUInt16BigEndian(packet[2..], (ushort)packet.Length);
        BinaryPrimitives.WriteUInt16BigEndian(packet[6..], DontFragment);
        packet[8] = HopLimit;
        packet[9] = Interop.IPPROTO_TCP;
        from.Address.CopyTo(packet[12..]);
        to.Address.CopyTo(packet[16..]);
        // The kernel writes it again (and the length, and an id), but a packet is sent whole.
        BinaryPrimitives.WriteUInt16BigEndian(packet[10..], Checksum(0, packet[..Ipv4Header]));
        return packet;
    }

    private static Span<byte> Ipv6(Span<byte> packet, Endpoint from, Endpoint to)
    {
        packet.Clear();
        packet[0] = 0x60; // version 6, traffic class and flow label 0
        BinaryPrimitives.WriteUInt16BigEndian(packet[4..], TcpHeader);
        packet[6] = Interop.IPPROTO_TCP;
        packet[7] = HopLimit;
        from.Address.CopyTo(packet[8..]);
        to.Address.CopyTo(packet[24..]);
        return packet;
    }

    /// <summary>The TCP checksum covers a pseudo-header: both addresses, the protocol and the TCP length.</summary>
    private static uint PseudoHeaderSum(Endpoint from, Endpoint to) =>
        Sum(from.Address, Sum(to.Address, Interop.IPPROTO_TCP + (uint)TcpHeader));

    /// <summary>The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit words.</summary>
    private static ushort Checksum(uint sum, ReadOnlySpan<byte> data)
    {
        sum = Sum(data, sum);
        while (sum >> 16 != 0)
            sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }

    private static uint Sum(ReadOnlySpan<byte> data, uint sum)
    {
        for (int i = 0; i + 1 < data.Length; i += 2)
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
        if (data.Length % 2 != 0)
            sum += (uint)data[^1] << 8;
        return sum;
    }

    /// <summary>An address and port out of sockaddr_in or sockaddr_in6; a v4-mapped IPv6 address as IPv4, as its packets carry it.</summary>
    private readonly record struct Endpoint(bool V6, byte[] Address, ushort Port, uint ScopeId)
    {
        private static ReadOnlySpan<byte> V4MappedPrefix => [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff];

        public static Endpoint Of(ReadOnlySpan<byte> sockaddr)
        {
            if (sockaddr.Length < 16)
                throw new ArgumentException($"a socket address of {sockaddr.Length} bytes");
            int family = BitConverter.ToUInt16(sockaddr);
            ushort port = BinaryPrimitives.ReadUInt16BigEndian(sockaddr[2..]);
            if (family == Interop.AF_INET)
                return new(false, sockaddr.Slice(4, 4).ToArray(), port, 0);
            if (family != Interop.AF_INET6 || sockaddr.Length < 28)
                throw new ArgumentException($"a socket address of family {family} ({sockaddr.Length} bytes), not IPv4 or IPv6");
            var address = sockaddr.Slice(8, 16);
            return address.StartsWith(V4MappedPrefix)
                ? new(false, address[12..].ToArray(), port, 0)
                : new(true, address.ToArray(), port, BitConverter.ToUInt32(sockaddr[24..]));
        }

        /// <summary>
        /// The destination of sendto: port 0 (a raw IPv6 socket takes a port only as its protocol),
        /// the scope kept for a link-local address.
        /// </summary>
        public void WriteSockaddr(Span<byte> sockaddr)
        {
            sockaddr.Clear();
            BitConverter.TryWriteBytes(sockaddr, (ushort)(V6 ? Interop.AF_INET6 : Interop.AF_INET));
            if (!V6)
            {
                Address.CopyTo(sockaddr[4..]);
                return;
            }
            Address.CopyTo(sockaddr[8..]);
            BitConverter.TryWriteBytes(sockaddr[24..], ScopeId);
        }

        public override string ToString() =>
            V6 ? $"[{new IPAddress(Address)}]:{Port}" : $"{new IPAddress(Address)}:{Port}";
    }
}
