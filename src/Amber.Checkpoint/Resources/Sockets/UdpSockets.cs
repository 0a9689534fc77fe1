using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Net;
using Google.Protobuf;

namespace Amber.Checkpoint.Resources.Sockets;

/// <summary>
/// Inet datagram (UDP) sockets, connected to a peer or not, with the datagrams waiting in their
/// receive queue: read under the freeze without consuming them (<see cref="UdpQueue"/>), each with
/// its sender and destination, and put back at restore, in order, before the program runs.
/// Refused by name: a pending error (a peek would take it from the program, and nothing gives it
/// back), a datagram sent to an address that is not this host's own unicast one (broadcast,
/// multicast: sending it again would reach others), and an IPv6 datagram larger than a raw packet
/// carries. What each datagram's IP header said besides its addresses (TTL, TOS, options) and
/// when it arrived are not kept.
/// </summary>
public static class UdpSockets
{
    public static bool Applies(SocketState s) => s.Family is SocketState.Inet or SocketState.Inet6 && s.Type == SocketState.Datagram;

    /// <summary>Reads the queue of fd <paramref name="fd"/> of <paramref name="pid"/> into <paramref name="image"/>.</summary>
    public static void Dump(int pid, int fd, string what, SocketImage image)
    {
        if (UdpQueue.HasPendingError(pid, fd))
            throw new UnsupportedResourceException(pid, what, "a UDP socket with an error pending (an ICMP error it was told of), which a restore cannot give back and reading its queue would take from the program");
        foreach (var d in UdpQueue.Peek(pid, fd))
        {
            if (!UdpQueue.IsLocalUnicast(d.Destination))
                throw new UnsupportedResourceException(pid, what, $"a UDP socket with a datagram queued that was sent to {UdpQueue.Describe(d.Destination)}, not a unicast address of this host (sent again, it would reach other sockets or hosts)");
            if (d.Data.Length > UdpQueue.MaxData(d.Destination))
                throw new UnsupportedResourceException(pid, what, $"a UDP socket with a datagram of {d.Data.Length} bytes queued, more than a raw packet to {UdpQueue.Describe(d.Destination)} carries");
            image.Datagrams.Add(new UdpDatagram
            {
                Data = UnsafeByteOperations.UnsafeWrap(d.Data), Source = ByteString.CopyFrom(d.Source), Destination = ByteString.CopyFrom(d.Destination),
            });
        }
    }

    /// <summary>
    /// Fills the queue of a restored socket (amber's copy, bound) and connects it to its peer. A
    /// connected socket takes datagrams from its peer only (measured: one from another source is not
    /// delivered), so a queue holding one from elsewhere — it came before connect() — is filled
    /// first; otherwise the socket is connected first, so that no stranger's datagram gets in meanwhile.
    /// </summary>
    public static void Restore(HeldFile copy, SocketImage s, string target)
    {
        var queue = s.Datagrams.Select(d => new QueuedDatagram(d.Data.ToByteArray(), d.Source.ToByteArray(), d.Destination.ToByteArray())).ToList();
        bool connected = !s.PeerAddress.IsEmpty;
        bool fillFirst = !connected || !UdpQueue.AllFrom(queue, s.PeerAddress.Span);
        if (fillFirst)
            UdpQueue.Fill(copy, queue, target);
        if (connected)
            SocketOptions.Connect(copy.Fd, s.PeerAddress.Span);
        if (!fillFirst)
            UdpQueue.Fill(copy, queue, target);
    }

    /// <summary>What inspect shows of a UDP socket: its addresses and queue; null for one with neither a peer nor a queue.</summary>
    public static string? Describe(SocketImage s)
    {
        if (!(s.Family is SocketState.Inet or SocketState.Inet6) || s.Type != SocketState.Datagram || (s.PeerAddress.IsEmpty && s.Datagrams.Count == 0))
            return null;
        string peer = s.PeerAddress.IsEmpty ? "(not connected)" : TcpConnections.Describe(s.PeerAddress);
        return $"UDP {TcpConnections.Describe(s.LocalAddress)} -> {peer}, {s.Datagrams.Count} datagrams queued ({s.Datagrams.Sum(d => (long)d.Data.Length)} B)";
    }
}
