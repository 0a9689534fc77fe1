using System.Diagnostics;
using Amber.Kernel.Files;
using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>
/// Connections waiting in a listening socket's accept queue (handshake done, not accepted yet): taken
/// out to be read, and handed to a listener again, where the program accepts them as if nothing happened.
/// <para>
/// No socket option puts a socket in an accept queue: only a handshake does, and the kernel picks the
/// listener's initial sequence number at random. Except in one case: a SYN that reuses the four
/// addresses of a connection in TIME_WAIT gets the sequence after that connection's, plus 65537
/// (tcp_timewait_state_process). So <see cref="Requeue"/> makes such a TIME_WAIT connection with
/// TCP_REPAIR (its FIN acknowledged by a segment made up as the peer's, like
/// <see cref="TcpRepair.Restore"/>), then makes up the peer's SYN, its ACK and the bytes it had sent:
/// the listener's new connection has the old one's sequences, and the peer never knew. Everything the
/// listener sends meanwhile (its SYN-ACK, acknowledgments) must be kept from the peer by the caller's
/// network lock, which lets the made-up segments through by their mark (<see cref="TcpRepair.PeerSegmentMark"/>).
/// </para>
/// <para>
/// The new connection's options are the peer's from the SYN (MSS, window scale, SACK), its own the
/// listener's, as they were. Timestamps: its clock's offset is the kernel's for the two addresses,
/// the old one's on the same boot; the SYN and ACK carry timestamp 0, which the kernel takes as "not
/// known yet" (so the peer's next timestamps pass its PAWS check). On another boot the offset differs
/// and the peer could take the listener's timestamps for old ones and drop its segments: then the
/// caller asks for none (<c>timestamps</c> false) and the connection goes on without them.
/// </para>
/// </summary>
public static class TcpAcceptQueue
{
    // Where a SYN to a TIME_WAIT connection starts: tw_snd_nxt + 65535 + 2.
    private const uint TimeWaitStep = 65537;
    private const int MaxPayload = 16384;
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(2);

    /// <summary>
    /// Whether a connection read from an accept queue is one <see cref="Requeue"/> makes again: the
    /// program could not have written on it; the peer may have sent bytes, and its FIN.
    /// </summary>
    public static bool CanRequeue(TcpConnectionState c) =>
        c.State is TcpState.Established or TcpState.CloseWait && c.SendQueue.Length == 0 && c.LocalFin == TcpFin.None;

    /// <summary>
    /// Takes the oldest connection waiting on listening socket <paramref name="listener"/> (amber's copy
    /// of it), in repair mode, so that closing it sends nothing; null when none waits.
    /// </summary>
    public static unsafe HeldFile? Take(int listener)
    {
        var poll = new Pollfd { fd = listener, events = Interop.POLLIN };
        if (Errnos.Check(Interop.Poll(&poll, 1, 0), "poll", Target(listener)) == 0)
            return null;
        int fd = Interop.Accept4(listener, 0, 0, Interop.SOCK_CLOEXEC);
        if (fd < 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Errnos.EAGAIN)
            return null;
        var taken = new HeldFile(new SafeFdHandle(Errnos.Check(fd, "accept4", Target(listener))));
        try
        {
            TcpRepair.Enter(taken.Fd);
            return taken;
        }
        catch
        {
            taken.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Hands the connection <paramref name="c"/> describes (read with <see cref="TcpRepair.Dump"/> from a
    /// socket <see cref="Take"/> took; that socket closed) to listening socket <paramref name="listener"/>
    /// (amber's copy of it), at the end of its accept queue, with the bytes the peer had sent waiting in
    /// it, and its FIN if it came. Checks that the listener's queue grew and the connection holds what it
    /// held. Needs CAP_NET_ADMIN (repair mode) and CAP_NET_RAW.
    /// </summary>
    public static void Requeue(int listener, TcpConnectionState c, bool timestamps)
    {
        if (!CanRequeue(c))
            throw new ArgumentException($"a connection in state {c.State} with {c.SendQueue.Length} bytes to send: not one an accept queue holds", nameof(c));
        var local = Endpoint.Of(c.LocalAddress);
        var remote = Endpoint.Of(c.RemoteAddress);
        uint received = c.ReceiveSequence - (c.RemoteFinReceived ? 1u : 0u);
        uint peerStart = received - (uint)c.ReceiveQueue.Length - 1; // the peer's SYN
        uint ourStart = c.SendSequence - 1;                           // the listener's SYN-ACK
        int queued = SocketInspector.AcceptQueue(listener);

        // Its FIN takes one sequence: its snd_nxt in TIME_WAIT is one past where its send queue starts.
        // The peer's FIN there must come before the SYN, which only a later sequence reopens.
        MakeTimeWait(c, local, remote, ourStart - TimeWaitStep - 1, peerStart - 16);

        bool scale = (c.Options & TcpOptions.WindowScale) != 0;
        timestamps &= (c.Options & TcpOptions.Timestamps) != 0;
        ushort window = (ushort)Math.Min(scale ? c.Window.SendWindow >> c.SendWindowScale : c.Window.SendWindow, ushort.MaxValue);
        Forge(c, peerStart, 0, PeerSegment.Syn, (ushort)Math.Min(c.Window.SendWindow, ushort.MaxValue), SynOptions(c, scale, timestamps));
        Span<byte> ackOptions = stackalloc byte[timestamps ? 12 : 0];
        if (timestamps)
            WriteTimestamps(ackOptions);
        Forge(c, peerStart + 1, c.SendSequence, PeerSegment.Ack, window, ackOptions);
        WaitFor(() => SocketInspector.AcceptQueue(listener) > queued, c, "the listener did not take the connection into its accept queue");

        var data = c.ReceiveQueue.AsSpan();
        for (int at = 0; at < data.Length; at += MaxPayload)
        {
            var part = data.Slice(at, Math.Min(MaxPayload, data.Length - at));
            Forge(c, peerStart + 1 + (uint)at, c.SendSequence, PeerSegment.Ack | PeerSegment.Push, window, ackOptions, part);
        }
        if (c.RemoteFinReceived)
            Forge(c, received, c.SendSequence, PeerSegment.Fin | PeerSegment.Ack, window, ackOptions);
        // sock_diag counts up to rcv_nxt, which the FIN moved one further.
        var expected = ((int)c.State, c.ReceiveQueue.Length + (c.RemoteFinReceived ? 1 : 0));
        (int State, int ReceiveQueue)? found = null;
        WaitFor(() => (found = TcpDiag.Find(local, remote)) == expected, c,
            $"it did not come to hold the {c.ReceiveQueue.Length} bytes the peer had sent{(c.RemoteFinReceived ? " and its FIN" : "")} (state {found?.State}, {found?.ReceiveQueue} received)");
    }

    /// <summary>
    /// A connection of the four addresses in TIME_WAIT whose FIN was at <paramref name="sent"/> and the
    /// peer's at <paramref name="receivedFin"/>: an established one made with
    /// TCP_REPAIR, shut down as if its FIN was sent, then given the peer's ACK and FIN.
    /// </summary>
    private static void MakeTimeWait(TcpConnectionState c, Endpoint local, Endpoint remote, uint sent, uint receivedFin)
    {
        int fd = Errnos.Check(Interop.Socket(local.V6 ? Interop.AF_INET6 : Interop.AF_INET, Interop.SOCK_STREAM | Interop.SOCK_CLOEXEC, Interop.IPPROTO_TCP),
            "socket", $"TIME_WAIT for {remote} → {local}");
        using var handle = new SafeFdHandle(fd);
        Span<byte> sockaddr = stackalloc byte[local.V6 ? 28 : 16];
        TcpRepair.Enter(fd);
        TcpRepair.SetQueueSequence(fd, Interop.TCP_SEND_QUEUE, sent);
        TcpRepair.SetQueueSequence(fd, Interop.TCP_RECV_QUEUE, receivedFin);
        // Repair mode binds beside the listener, as it does a restored connection.
        local.WriteSockaddr(sockaddr, withPort: true);
        Errnos.Check(Interop.Bind(fd, sockaddr, (uint)sockaddr.Length), "bind", Target(fd));
        remote.WriteSockaddr(sockaddr, withPort: true);
        Errnos.Check(Interop.Connect(fd, sockaddr, (uint)sockaddr.Length), "connect", Target(fd));
        // With the send queue selected, the FIN counts as sent; nothing goes out.
        TcpRepair.Select(fd, Interop.TCP_SEND_QUEUE);
        Errnos.Check(Interop.Shutdown(fd, Interop.SHUT_WR), "shutdown(SHUT_WR)", Target(fd));
        SocketOptions.SetInt(fd, Interop.IPPROTO_TCP, Interop.TCP_REPAIR, Interop.TCP_REPAIR_OFF_NO_WP, Target(fd), "setsockopt(TCP_REPAIR, off without probe)");
        // The peer's ACK of the FIN and its own FIN: FIN_WAIT1 → TIME_WAIT, the socket itself CLOSE.
        PeerSegment.Send(c.LocalAddress, c.RemoteAddress, receivedFin, sent + 1, PeerSegment.Fin | PeerSegment.Ack, ushort.MaxValue, TcpRepair.PeerSegmentMark);
        WaitFor(() => TcpRepair.StateOf(fd) == TcpState.Close, c, "the connection in TIME_WAIT it needs could not be made");
    }

    private static void Forge(TcpConnectionState c, uint sequence, uint acknowledgment, byte flags, ushort window, ReadOnlySpan<byte> options,
        ReadOnlySpan<byte> payload = default) =>
        PeerSegment.Send(c.LocalAddress, c.RemoteAddress, sequence, acknowledgment, flags, window, TcpRepair.PeerSegmentMark, options, payload);

    /// <summary>The peer's SYN options as the connection had them: MSS, SACK permitted, timestamps, window scale.</summary>
    private static byte[] SynOptions(TcpConnectionState c, bool scale, bool timestamps)
    {
        var options = new List<byte> { 2, 4, (byte)(c.MaxSegmentSize >> 8), (byte)c.MaxSegmentSize };
        bool sack = (c.Options & TcpOptions.Sack) != 0;
        if (timestamps)
        {
            var ts = new byte[12];
            WriteTimestamps(ts);
            if (sack)
                (ts[0], ts[1]) = (4, 2); // SACK permitted in the NOPs' place
            options.AddRange(ts);
        }
        else if (sack)
            options.AddRange([1, 1, 4, 2]);
        if (scale)
            options.AddRange([1, 3, 3, (byte)c.SendWindowScale]);
        return [.. options];
    }

    // NOP, NOP, timestamps 0 and 0: 0 is "not known yet" to PAWS, which then takes the peer's next.
    private static void WriteTimestamps(Span<byte> option)
    {
        option.Clear();
        (option[0], option[1], option[2], option[3]) = (1, 1, 8, 10);
    }

    // Loopback hands a made-up packet to the stack in a softirq, mostly before sendto returns.
    private static void WaitFor(Func<bool> done, TcpConnectionState c, string failure)
    {
        var clock = Stopwatch.StartNew();
        while (!done())
        {
            if (clock.Elapsed > Wait)
                throw new KernelCallException("putting a connection back in its accept queue",
                    $"{Endpoint.Of(c.RemoteAddress)} → {Endpoint.Of(c.LocalAddress)}",
                    $"{failure} in {Wait.TotalSeconds:0} s (a firewall must let packets with mark 0x{TcpRepair.PeerSegmentMark:x} through)");
            Thread.Sleep(1);
        }
    }

    private static string Target(int fd) => $"TCP socket fd {fd}";
}
