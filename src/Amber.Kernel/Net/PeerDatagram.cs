using System.Buffers.Binary;
using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>
/// A UDP datagram made up as its sender sent it, source address and port included, handed to this
/// host's own stack through a raw socket (<see cref="RawPacket"/>): how a restored UDP socket's receive
/// queue is filled again with what waited in it.
/// <para>
/// Why a raw packet, measured on this kernel (6.18, loopback): a raw IPv4 or IPv6 UDP packet is
/// delivered for any source (10.9.8.7, 2001:db8::1, 127.0.0.1 at a port another socket holds), to a
/// dual-stack IPv6 socket as ::ffff:a.b.c.d, and to a connected socket when it comes from its peer.
/// A temporary socket with IP_TRANSPARENT delivered a foreign source too, but cannot bind the
/// address of a socket that holds it (EADDRINUSE: the peer of a pair is restored beside it);
/// IP_FREEBIND cannot send from a foreign source at all (ENETUNREACH).
/// </para>
/// </summary>
internal static class PeerDatagram
{
    private const int UdpHeader = 8;

    /// <summary>
    /// The most a datagram may carry: an IPv4 packet's length field holds 65535; a raw IPv6 packet
    /// (header included) may not be larger than the loopback MTU, 65536.
    /// </summary>
    public static int MaxPayload(bool v6) => v6 ? 65536 - RawPacket.Ipv6Header - UdpHeader : 65535 - RawPacket.Ipv4Header - UdpHeader;

    /// <summary>Sends <paramref name="data"/> from <paramref name="source"/> to <paramref name="destination"/> (sockaddr bytes).</summary>
    public static void Send(ReadOnlySpan<byte> source, ReadOnlySpan<byte> destination, ReadOnlySpan<byte> data, int mark)
    {
        var from = Endpoint.Of(source);
        var to = Endpoint.Of(destination);
        if (data.Length > MaxPayload(to.V6))
            throw new ArgumentException($"a datagram of {data.Length} bytes from {from} to {to} is larger than a raw packet carries");
        int header = RawPacket.HeaderLength(from);
        var packet = new byte[header + UdpHeader + data.Length];
        RawPacket.WriteHeader(packet, from, to, Interop.IPPROTO_UDP, UdpHeader + data.Length);
        var udp = packet.AsSpan(header);
        BinaryPrimitives.WriteUInt16BigEndian(udp, from.Port);
        BinaryPrimitives.WriteUInt16BigEndian(udp[2..], to.Port);
        BinaryPrimitives.WriteUInt16BigEndian(udp[4..], (ushort)udp.Length);
        data.CopyTo(udp[UdpHeader..]);
        ushort checksum = RawPacket.Checksum(RawPacket.PseudoHeaderSum(from, to, Interop.IPPROTO_UDP, udp.Length), udp);
        // 0 means "no checksum" in UDP (and is refused over IPv6): a sum of 0 is sent as its other form.
        BinaryPrimitives.WriteUInt16BigEndian(udp[6..], checksum == 0 ? (ushort)0xffff : checksum);
        RawPacket.Send(packet, from, to, mark);
    }

    /// <summary>Whether two socket addresses name the same address and port (v4-mapped as IPv4).</summary>
    public static bool SameEndpoint(ReadOnlySpan<byte> a, ReadOnlySpan<byte> b)
    {
        var x = Endpoint.Of(a);
        var y = Endpoint.Of(b);
        return x.V6 == y.V6 && x.Port == y.Port && x.Address.AsSpan().SequenceEqual(y.Address);
    }
}
