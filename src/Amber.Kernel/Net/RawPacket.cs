using System.Buffers.Binary;
using System.Net;
using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>
/// An IPv4 or IPv6 packet made up by amber and handed to this host's own stack through a raw socket
/// (IPPROTO_RAW: the IP header is amber's, source address included): the one place amber forges
/// packets, for a TCP segment (<see cref="PeerSegment"/>) or a UDP datagram (<see cref="PeerDatagram"/>).
/// The destination is an address of this host, so the packet never leaves it.
/// </summary>
internal static class RawPacket
{
    public const int Ipv4Header = 20;
    public const int Ipv6Header = 40;
    private const byte HopLimit = 64;
    private const ushort DontFragment = 0x4000;

    /// <summary>The IP header's length for a packet from <paramref name="from"/>.</summary>
    public static int HeaderLength(Endpoint from) => from.V6 ? Ipv6Header : Ipv4Header;

    /// <summary>
    /// Writes the IP header of a packet of <paramref name="protocol"/> carrying <paramref name="payload"/>
    /// bytes from <paramref name="from"/> to <paramref name="to"/> at the start of <paramref name="packet"/>.
    /// </summary>
    public static void WriteHeader(Span<byte> packet, Endpoint from, Endpoint to, byte protocol, int payload)
    {
        if (to.V6 != from.V6)
            throw new ArgumentException($"a packet from {from} to {to}: the two addresses are not of one family");
        if (to.V6)
        {
            var ip6 = packet[..Ipv6Header];
            ip6.Clear();
            ip6[0] = 0x60; // version 6, traffic class and flow label 0
            BinaryPrimitives.WriteUInt16BigEndian(ip6[4..], (ushort)payload);
            ip6[6] = protocol;
            ip6[7] = HopLimit;
            from.Address.CopyTo(ip6[8..]);
            to.Address.CopyTo(ip6[24..]);
            return;
        }
        var ip = packet[..Ipv4Header];
        ip.Clear();
        ip[0] = 0x45; // version 4, header of 5 words
        BinaryPrimitives.WriteUInt16BigEndian(ip[2..], (ushort)(Ipv4Header + payload));
        BinaryPrimitives.WriteUInt16BigEndian(ip[6..], DontFragment);
        ip[8] = HopLimit;
        ip[9] = protocol;
        from.Address.CopyTo(ip[12..]);
        to.Address.CopyTo(ip[16..]);
        // The kernel writes it again (and the length, and an id), but a packet is sent whole.
        BinaryPrimitives.WriteUInt16BigEndian(ip[10..], Checksum(0, ip));
    }

    /// <summary>The TCP and UDP checksums cover a pseudo-header: both addresses, the protocol and the length.</summary>
    public static uint PseudoHeaderSum(Endpoint from, Endpoint to, byte protocol, int length) =>
        Sum(from.Address, Sum(to.Address, protocol + (uint)length));

    /// <summary>The Internet checksum (RFC 1071): the ones' complement of the ones' complement sum of 16-bit words.</summary>
    public static ushort Checksum(uint sum, ReadOnlySpan<byte> data)
    {
        sum = Sum(data, sum);
        while (sum >> 16 != 0)
            sum = (sum & 0xffff) + (sum >> 16);
        return (ushort)~sum;
    }

    private static uint Sum(ReadOnlySpan<byte> data, uint sum)
    {
        // Folded as it goes: a datagram of 64 KiB would overflow 32 bits.
        for (int i = 0; i + 1 < data.Length; i += 2)
        {
            sum += BinaryPrimitives.ReadUInt16BigEndian(data[i..]);
            if (sum >= 0x80000000)
                sum = (sum & 0xffff) + (sum >> 16);
        }
        if (data.Length % 2 != 0)
            sum += (uint)data[^1] << 8;
        return sum;
    }

    /// <summary>Sends a whole packet (IP header first) to <paramref name="to"/>, marked with <paramref name="mark"/>.</summary>
    public static void Send(ReadOnlySpan<byte> packet, Endpoint from, Endpoint to, int mark)
    {
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
}

/// <summary>An address and port out of sockaddr_in or sockaddr_in6; a v4-mapped IPv6 address as IPv4, as its packets carry it.</summary>
internal readonly record struct Endpoint(bool V6, byte[] Address, ushort Port, uint ScopeId)
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
    /// the scope kept for a link-local address. <paramref name="withPort"/>: the port too, for bind or connect.
    /// </summary>
    public void WriteSockaddr(Span<byte> sockaddr, bool withPort = false)
    {
        sockaddr.Clear();
        BitConverter.TryWriteBytes(sockaddr, (ushort)(V6 ? Interop.AF_INET6 : Interop.AF_INET));
        if (withPort)
            BinaryPrimitives.WriteUInt16BigEndian(sockaddr[2..], Port);
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
