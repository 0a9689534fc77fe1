using System.Buffers;
using System.Buffers.Binary;
using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>
/// A TCP segment made up as if the peer of a connection had sent it, handed to this host's own stack
/// through a raw socket (<see cref="RawPacket"/>): how a socket rebuilt with TCP_REPAIR gets the
/// peer's FIN, or the acknowledgment of its own FIN, which no socket option puts in place (CRIU's
/// libsoccr does the same with libnet); and how a connection taken from an accept queue is handed to
/// its listener again (<see cref="TcpAcceptQueue"/>). IPv4, also for a v4-mapped address, or IPv6.
/// </summary>
internal static class PeerSegment
{
    public const byte Fin = 0x01;
    public const byte Syn = 0x02;
    public const byte Push = 0x08;
    public const byte Ack = 0x10;

    private const int TcpHeader = 20;

    /// <summary>
    /// Sends the segment from <paramref name="remote"/> to <paramref name="local"/> (sockaddr bytes of the
    /// rebuilt socket), marked with <paramref name="mark"/> so a firewall that keeps the connection's
    /// packets off the stack can let it through.
    /// </summary>
    /// <param name="options">TCP options, a multiple of 4 bytes long (padded with NOPs by the caller).</param>
    /// <param name="payload">The segment's bytes.</param>
    public static void Send(ReadOnlySpan<byte> local, ReadOnlySpan<byte> remote, uint sequence, uint acknowledgment, byte flags, ushort window, int mark,
        ReadOnlySpan<byte> options = default, ReadOnlySpan<byte> payload = default)
    {
        if (options.Length % 4 != 0 || options.Length > 40)
            throw new ArgumentException($"TCP options of {options.Length} bytes: a multiple of 4, at most 40", nameof(options));
        var to = Endpoint.Of(local);
        var from = Endpoint.Of(remote);
        int header = TcpHeader + options.Length;
        int length = RawPacket.HeaderLength(from) + header + payload.Length;
        var rented = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            var packet = rented.AsSpan(0, length);
            RawPacket.WriteHeader(packet, from, to, Interop.IPPROTO_TCP, header + payload.Length);
            var tcp = packet[RawPacket.HeaderLength(from)..];
            tcp[..TcpHeader].Clear();
            BinaryPrimitives.WriteUInt16BigEndian(tcp, from.Port);
            BinaryPrimitives.WriteUInt16BigEndian(tcp[2..], to.Port);
            BinaryPrimitives.WriteUInt32BigEndian(tcp[4..], sequence);
            BinaryPrimitives.WriteUInt32BigEndian(tcp[8..], acknowledgment);
            tcp[12] = (byte)(header / 4 << 4); // data offset, in 32-bit words
            tcp[13] = flags;
            BinaryPrimitives.WriteUInt16BigEndian(tcp[14..], window);
            options.CopyTo(tcp[TcpHeader..]);
            payload.CopyTo(tcp[header..]);
            BinaryPrimitives.WriteUInt16BigEndian(tcp[16..], RawPacket.Checksum(RawPacket.PseudoHeaderSum(from, to, Interop.IPPROTO_TCP, tcp.Length), tcp));
            RawPacket.Send(packet, from, to, mark);
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(rented);
        }
    }
}
