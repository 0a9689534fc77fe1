using System.Buffers.Binary;
using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>
/// A TCP segment made up as if the peer of a connection had sent it, handed to this host's own stack
/// through a raw socket (<see cref="RawPacket"/>): how a socket rebuilt with TCP_REPAIR gets the
/// peer's FIN, or the acknowledgment of its own FIN, which no socket option puts in place (CRIU's
/// libsoccr does the same with libnet). IPv4, also for a v4-mapped address, or IPv6; no TCP options.
/// </summary>
internal static class PeerSegment
{
    public const byte Fin = 0x01;
    public const byte Ack = 0x10;

    private const int TcpHeader = 20;

    /// <summary>
    /// Sends the segment from <paramref name="remote"/> to <paramref name="local"/> (sockaddr bytes of the
    /// rebuilt socket), marked with <paramref name="mark"/> so a firewall that keeps the connection's
    /// packets off the stack can let it through.
    /// </summary>
    public static void Send(ReadOnlySpan<byte> local, ReadOnlySpan<byte> remote, uint sequence, uint acknowledgment, byte flags, ushort window, int mark)
    {
        var to = Endpoint.Of(local);
        var from = Endpoint.Of(remote);
        Span<byte> packet = stackalloc byte[RawPacket.HeaderLength(from) + TcpHeader];
        RawPacket.WriteHeader(packet, from, to, Interop.IPPROTO_TCP, TcpHeader);
        var tcp = packet[^TcpHeader..];
        BinaryPrimitives.WriteUInt16BigEndian(tcp, from.Port);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], to.Port);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], sequence);
        BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], acknowledgment);
        tcp[12] = TcpHeader / 4 << 4; // data offset, in 32-bit words
        tcp[13] = flags;
        BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], window);
        BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], RawPacket.Checksum(RawPacket.PseudoHeaderSum(from, to, Interop.IPPROTO_TCP, TcpHeader), tcp));
        RawPacket.Send(packet, from, to, mark);
    }
}
