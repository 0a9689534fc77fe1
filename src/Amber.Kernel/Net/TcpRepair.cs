using System.Buffers;
using System.Diagnostics;
using System.Runtime.InteropServices;
using Amber.Kernel.Files;
using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>
/// Reads an established or half-closed TCP connection and makes it again on a new socket, with TCP_REPAIR
/// (CAP_NET_ADMIN). The fds are this process's own: a copy of a target's socket (pidfd_getfd) is the
/// same socket.
/// <para>
/// Checkpoint: <see cref="Enter"/> → <see cref="Dump"/> → close every reference to the socket while it
/// is still in repair mode (the kernel then sends neither FIN nor RST).
/// Restore, on a new socket of the same family: <see cref="Restore"/> (it enters repair mode) → the
/// caller's socket options → <see cref="Leave(int)"/>. The old socket must be closed first: connect refuses
/// a second socket with the same four addresses.
/// </para>
/// <para>
/// From the first <see cref="Enter"/> until <see cref="Leave(int)"/> the connection's packets must be kept
/// from this host's stack (CRIU adds a netfilter rule): a socket in repair mode still takes data and
/// acknowledgments, and once it is closed the kernel answers the peer with RST.
/// </para>
/// </summary>
public static class TcpRepair
{
    private const int MaxDumpAttempts = 10;
    private const int MaxQueueBytes = 1 << 30;
    private const int SockaddrSize = 128;  // sockaddr_storage
    private const int TcpInfoHead = 8;     // tcpi_state .. the wscale byte
    private static readonly TimeSpan ForgedSegmentWait = TimeSpan.FromSeconds(2);

    public static void Enter(int fd) =>
        SetInt(fd, Interop.IPPROTO_TCP, Interop.TCP_REPAIR, Interop.TCP_REPAIR_ON, "setsockopt(TCP_REPAIR, on)");

    /// <summary>
    /// Ends repair mode. The kernel sends a window probe, whose answer tells this end what the peer
    /// has acknowledged and how much it takes now. It also clears SO_REUSEADDR: set it again after.
    /// </summary>
    public static void Leave(int fd) =>
        SetInt(fd, Interop.IPPROTO_TCP, Interop.TCP_REPAIR, Interop.TCP_REPAIR_OFF, "setsockopt(TCP_REPAIR, off)");

    /// <summary><see cref="Leave(int)"/>, then the program's SO_REUSEADDR back (leaving repair mode clears it).</summary>
    public static void Leave(int fd, int reuseAddress)
    {
        Leave(fd);
        SetInt(fd, Interop.SOL_SOCKET, Interop.SO_REUSEADDR, reuseAddress, "setsockopt(SO_REUSEADDR)");
    }

    /// <summary>
    /// The state of the connection of socket <paramref name="fd"/>, which is in repair mode. Both
    /// queues are peeked, not consumed. Packets that arrive meanwhile move the queues: the dump is
    /// taken again until they stood still through one (they do once the traffic is stopped).
    /// </summary>
    /// <param name="settle">
    /// False: read once, for a caller that checks itself that nothing moved (with
    /// <see cref="QueueEnds"/> around the readings of many connections).
    /// </param>
    public static TcpConnectionState Dump(int fd, bool settle = true)
    {
        if (!settle)
            return DumpOnce(fd, null, out _);
        for (int attempt = 1; ; attempt++)
        {
            var state = DumpOnce(fd, null, out var read);
            if (QueueEnds(fd) == read)
                return state;
            if (attempt == MaxDumpAttempts)
                throw new KernelCallException("TCP_REPAIR dump", $"{Target(fd)}: its queues kept moving (packets still arrive)", Errnos.EAGAIN);
        }
    }

    /// <summary>
    /// One reading of the connection of <paramref name="fd"/> (in repair mode) whose family and addresses
    /// the caller knows already (sockaddr bytes, as getsockname and getpeername give them), and where its
    /// queues ended as it was read: equal to <see cref="QueueEnds"/> afterwards, nothing moved since.
    /// </summary>
    public static TcpConnectionState Read(int fd, int family, byte[] local, byte[] remote, out (uint, uint, int, int) queueEnds) =>
        DumpOnce(fd, (family, local, remote), out queueEnds);

    /// <summary>
    /// The mark (SO_MARK) of the segments <see cref="Restore"/> makes up as the peer's to give a rebuilt
    /// socket the peer's FIN, or the acknowledgment of its own. A firewall that keeps the connection's
    /// packets off the stack meanwhile must let packets with this mark through.
    /// </summary>
    public const int PeerSegmentMark = 0x616d6272; // "ambr"

    /// <summary>
    /// Whether <see cref="Restore"/> makes a connection in <paramref name="state"/> again: established, or
    /// half-closed with its FINs (FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK, CLOSING). Not TIME_WAIT or
    /// CLOSE (nothing is left to rebuild), nor a handshake or a listener.
    /// </summary>
    public static bool CanRebuild(TcpState state) =>
        state is TcpState.Established or TcpState.FinWait1 or TcpState.FinWait2 or TcpState.CloseWait or TcpState.LastAck or TcpState.Closing;

    /// <summary>
    /// Makes the connection <paramref name="state"/> describes on <paramref name="fd"/>, a new TCP socket
    /// of <see cref="TcpConnectionState.Family"/>, not bound. It is left in repair mode: nothing has
    /// told the peer yet, and the caller ends it with <see cref="Leave(int)"/>.
    /// <para>
    /// A half-closed connection gets its FINs back in the order they came: this end's with
    /// shutdown(SHUT_WR), counted as sent in repair mode (or written after the bytes never sent, when it
    /// was not sent); the peer's FIN, and its acknowledgment of this end's FIN (FIN_WAIT2), as segments
    /// made up as the peer's (<see cref="PeerSegmentMark"/>), which need CAP_NET_RAW. Sequences, queues
    /// and windows come back as they were; a rebuilt CLOSE_WAIT or LAST_ACK end acknowledges the peer's
    /// FIN once more (a delayed ACK the peer takes as a duplicate), announcing its receive window anew.
    /// </para>
    /// </summary>
    /// <param name="sendUnsent">
    /// Whether the bytes never sent go out now (<see cref="SendUnsent(int, TcpConnectionState)"/>). They go to the
    /// peer at once: when the peer is being restored too, they wait until it exists, or its host would
    /// answer with RST. Until then a connection whose FIN was not sent is not shut down yet.
    /// </param>
    public static void Restore(int fd, TcpConnectionState state, bool sendUnsent = true)
    {
        if (!CanRebuild(state.State))
            throw new NotSupportedException($"TCP_REPAIR cannot make again a connection in state {state.State}: only an established or half-closed one (FIN_WAIT1, FIN_WAIT2, CLOSE_WAIT, LAST_ACK, CLOSING)");
        CheckFins(state);
        Enter(fd);
        // Where each queue starts: refilling it moves its end to where the old one was, and each FIN
        // then takes its sequence number after the bytes. Only a socket not yet connected takes them.
        SetQueueSequence(fd, Interop.TCP_SEND_QUEUE, Unacknowledged(state));
        SetQueueSequence(fd, Interop.TCP_RECV_QUEUE, ReceivedEnd(state) - (uint)state.ReceiveQueue.Length);
        // Repair mode lets bind take an address in use, as an accepted connection shares its port with
        // the listener. SO_REUSEADDR is not needed, and setting it now would replace that with its weaker rule.
        Check(Interop.Bind(fd, state.LocalAddress, (uint)state.LocalAddress.Length), "bind", fd);
        // In repair mode connect sends no SYN: the socket is established at once.
        Check(Interop.Connect(fd, state.RemoteAddress, (uint)state.RemoteAddress.Length), "connect", fd);
        SetOptions(fd, state);
        if ((state.Options & TcpOptions.Timestamps) != 0)
            SetInt(fd, Interop.IPPROTO_TCP, Interop.TCP_TIMESTAMP, (int)state.Timestamp, "setsockopt(TCP_TIMESTAMP)");

        Select(fd, Interop.TCP_RECV_QUEUE);
        Write(fd, state.ReceiveQueue, Interop.SO_RCVBUF, Interop.SO_RCVBUFFORCE, "send(TCP_RECV_QUEUE)");
        // Bytes written in repair mode count as sent, so the peer's acknowledgments of them are taken.
        Select(fd, Interop.TCP_SEND_QUEUE);
        Write(fd, state.SendQueue.AsSpan(0, state.SentBytes), Interop.SO_SNDBUF, Interop.SO_SNDBUFFORCE, "send(TCP_SEND_QUEUE)");
        RestoreFins(fd, state);
        // Only now: the kernel refuses a rcv_wup past rcv_nxt, which the receive queue and the peer's FIN
        // moved; and a segment made up as the peer's updates the send window from its own.
        SetWindow(fd, PeerFinWaits(state) ? WithoutPeerFin(state) : state.Window);

        if (sendUnsent)
            SendUnsent(fd, state);
    }

    /// <summary>
    /// The FINs that go before the bytes never sent, in the order they came. In LAST_ACK the peer's FIN
    /// came first (ESTABLISHED → CLOSE_WAIT → LAST_ACK); in CLOSING this end's did (→ FIN_WAIT1 → CLOSING),
    /// so the peer's waits for this end's when that one was not sent (<see cref="SendUnsent(int, TcpConnectionState)"/>).
    /// </summary>
    private static void RestoreFins(int fd, TcpConnectionState state)
    {
        if (state.RemoteFinReceived && (state.State == TcpState.LastAck || state.LocalFin == TcpFin.None))
            ReceiveFin(fd, state);
        if (state.LocalFin is TcpFin.Sent or TcpFin.Acknowledged)
            ShutdownAsSent(fd);
        if (state.LocalFin == TcpFin.Acknowledged)
            Forge(fd, state, ReceivedEnd(state), state.SendSequence, PeerSegment.Ack, TcpState.FinWait2);
        if (state.State == TcpState.Closing && state.LocalFin == TcpFin.Sent)
            ReceiveFin(fd, state);
    }

    /// <summary>
    /// shutdown(SHUT_WR) in repair mode with the send queue selected: the FIN is queued and counted as
    /// sent, nothing goes out (with another queue selected it would be sent now). It is sent again on
    /// timeout until the peer acknowledges it.
    /// </summary>
    private static void ShutdownAsSent(int fd)
    {
        Select(fd, Interop.TCP_SEND_QUEUE);
        Check(Interop.Shutdown(fd, Interop.SHUT_WR), "shutdown(SHUT_WR)", fd);
    }

    /// <summary>In CLOSING with this end's FIN not sent, the peer's FIN, which came after it, waits for it.</summary>
    private static bool PeerFinWaits(TcpConnectionState state) => state.State == TcpState.Closing && state.LocalFin == TcpFin.NotSent;

    /// <summary>
    /// The window as the kernel takes it while the peer's FIN is not back: rcv_wup no further than the
    /// receive queue's end, the window's right edge where it was.
    /// </summary>
    private static TcpWindow WithoutPeerFin(TcpConnectionState state)
    {
        uint end = ReceivedEnd(state);
        var w = state.Window;
        uint past = w.ReceiveWindowUpdate - end;
        return (int)past > 0 ? w with { ReceiveWindowUpdate = end, ReceiveWindow = w.ReceiveWindow + past } : w;
    }

    /// <summary>The peer's FIN, after the receive queue; it acknowledges nothing new.</summary>
    private static void ReceiveFin(int fd, TcpConnectionState state) =>
        Forge(fd, state, ReceivedEnd(state), Unacknowledged(state), PeerSegment.Fin | PeerSegment.Ack,
            state.State == TcpState.Closing ? TcpState.Closing : TcpState.CloseWait);

    /// <summary>
    /// Sends a segment made up as the peer's to the rebuilt socket and waits until the stack took it:
    /// until the socket is in <paramref name="expected"/>. The window it announces is the peer's.
    /// </summary>
    private static void Forge(int fd, TcpConnectionState state, uint sequence, uint acknowledgment, byte flags, TcpState expected)
    {
        ushort window = (ushort)Math.Min(state.Window.SendWindow >> state.SendWindowScale, ushort.MaxValue);
        PeerSegment.Send(state.LocalAddress, state.RemoteAddress, sequence, acknowledgment, flags, window, PeerSegmentMark);
        // Loopback hands the packet to the stack in a softirq, mostly before sendto returns.
        var clock = Stopwatch.StartNew();
        TcpState now;
        while ((now = StateOf(fd)) != expected)
        {
            if (clock.Elapsed > ForgedSegmentWait)
                throw new KernelCallException(flags == PeerSegment.Ack ? "the peer's acknowledgment of the FIN" : "the peer's FIN", Target(fd),
                    $"the socket is still {now}, not {expected}, {ForgedSegmentWait.TotalSeconds:0} s after the segment was sent: the stack did not take it (a firewall must let packets with mark 0x{PeerSegmentMark:x} through)");
            Thread.Sleep(1);
        }
    }

    // Where the FIN steps each sequence: this end's is counted in write_seq once queued, the peer's in rcv_nxt.
    private static uint Unacknowledged(TcpConnectionState state) =>
        state.SendSequence - (state.LocalFin == TcpFin.None ? 0u : 1u) - (uint)state.SendQueue.Length;

    private static uint ReceivedEnd(TcpConnectionState state) =>
        state.ReceiveSequence - (state.RemoteFinReceived ? 1u : 0u);

    /// <summary>The FINs a dump of a connection in its state has; anything else is a mistake of the caller's.</summary>
    private static void CheckFins(TcpConnectionState state)
    {
        bool local = state.State switch
        {
            TcpState.Established or TcpState.CloseWait => state.LocalFin == TcpFin.None,
            TcpState.FinWait2 => state.LocalFin == TcpFin.Acknowledged && state.SendQueue.Length == 0,
            _ => state.LocalFin == TcpFin.Sent ? state.NotSentBytes == 0 : state.LocalFin == TcpFin.NotSent,
        };
        bool remote = state.RemoteFinReceived == (state.State is TcpState.CloseWait or TcpState.LastAck or TcpState.Closing);
        if (!local || !remote)
            throw new ArgumentException(
                $"a connection in state {state.State} with this end's FIN {state.LocalFin} ({state.NotSentBytes} of {state.SendQueue.Length} bytes not sent) and the peer's FIN {(state.RemoteFinReceived ? "received" : "not received")}: that is not what a dump gives",
                nameof(state));
    }

    /// <summary>
    /// The buffer sizes back as getsockopt reported them at checkpoint (the kernel doubles what is
    /// asked: half is asked, with the FORCE options), after a restore grew them to hold the queues.
    /// </summary>
    public static void SetBufferSizes(int fd, int receive, int send)
    {
        if (receive > 0)
            SetInt(fd, Interop.SOL_SOCKET, Interop.SO_RCVBUFFORCE, receive / 2, "setsockopt(SO_RCVBUFFORCE)");
        if (send > 0)
            SetInt(fd, Interop.SOL_SOCKET, Interop.SO_SNDBUFFORCE, send / 2, "setsockopt(SO_SNDBUFFORCE)");
    }

    /// <summary>
    /// The bytes of a restored connection's send queue that were never sent, written outside repair
    /// mode, as new ones, so they go out now; in repair mode they would count as sent and wait for a
    /// retransmission timeout. NO_WP: no window probe yet. The socket is in repair mode before and after.
    /// A connection whose FIN was not sent needs <see cref="SendUnsent(int, TcpConnectionState)"/>, which shuts it down after them.
    /// </summary>
    public static void SendUnsent(int fd, ReadOnlySpan<byte> unsent) => SendUnsent(fd, unsent, fin: false);

    /// <summary>
    /// What <see cref="Restore"/> left for when the peer exists, with sendUnsent false: the bytes never
    /// sent (<see cref="SendUnsent(int, ReadOnlySpan{byte})"/>), then this end's FIN when it was not sent either —
    /// shutdown(SHUT_WR) outside repair mode, so it goes out after them — and, in CLOSING, the peer's FIN,
    /// which came after it. The socket is in repair mode before and after.
    /// </summary>
    public static void SendUnsent(int fd, TcpConnectionState state)
    {
        bool fin = state.LocalFin == TcpFin.NotSent;
        SendUnsent(fd, state.SendQueue.AsSpan(state.SentBytes), fin);
        if (PeerFinWaits(state))
        {
            ReceiveFin(fd, state);
            SetWindow(fd, state.Window);
        }
    }

    private static void SendUnsent(int fd, ReadOnlySpan<byte> unsent, bool fin)
    {
        if (unsent.IsEmpty && !fin)
            return;
        SetInt(fd, Interop.IPPROTO_TCP, Interop.TCP_REPAIR, Interop.TCP_REPAIR_OFF_NO_WP, "setsockopt(TCP_REPAIR, off without probe)");
        Write(fd, unsent, Interop.SO_SNDBUF, Interop.SO_SNDBUFFORCE, "send");
        if (fin)
            Check(Interop.Shutdown(fd, Interop.SHUT_WR), "shutdown(SHUT_WR)", fd);
        Enter(fd);
    }

    private static TcpConnectionState DumpOnce(int fd, (int Family, byte[] Local, byte[] Remote)? known, out (uint, uint, int, int) queueEnds)
    {
        Span<byte> info = stackalloc byte[TcpInfoHead];
        uint length = TcpInfoHead;
        Check(Interop.Getsockopt(fd, Interop.IPPROTO_TCP, Interop.TCP_INFO, info, ref length), "getsockopt(TCP_INFO)", fd);
        byte wscale = info[Interop.TcpInfoWscaleOffset];

        var window = default(TcpRepairWindow);
        length = TcpRepairWindow.Size;
        Check(Interop.Getsockopt(fd, Interop.IPPROTO_TCP, Interop.TCP_REPAIR_WINDOW, MemoryMarshal.AsBytes(new Span<TcpRepairWindow>(ref window)), ref length),
            "getsockopt(TCP_REPAIR_WINDOW)", fd);
        var state = (TcpState)info[Interop.TcpInfoStateOffset];
        int notSent = IoctlInt(fd, Interop.SIOCOUTQNSD, "ioctl(SIOCOUTQNSD)");
        var (receiveSequence, _, receiveQueue) = ReadQueue(fd, Interop.TCP_RECV_QUEUE, Interop.SIOCINQ);
        var (sendSequence, sendQueued, sendQueue) = ReadQueue(fd, Interop.TCP_SEND_QUEUE, Interop.SIOCOUTQ);
        queueEnds = (receiveSequence, sendSequence, sendQueued, notSent);
        var localFin = LocalFin(state, notSent);
        // SIOCOUTQNSD counts a FIN not sent (it is the last sequence of the queue); the peek has no byte of it.
        if (localFin == TcpFin.NotSent)
            notSent--;

        return new TcpConnectionState(
            Family: known?.Family ?? GetInt(fd, Interop.SOL_SOCKET, Interop.SO_DOMAIN, "getsockopt(SO_DOMAIN)"),
            LocalAddress: known?.Local ?? Address(fd, peer: false),
            RemoteAddress: known?.Remote ?? Address(fd, peer: true),
            State: state,
            SendSequence: sendSequence,
            ReceiveSequence: receiveSequence,
            SendQueue: sendQueue,
            NotSentBytes: Math.Min(notSent, sendQueue.Length),
            ReceiveQueue: receiveQueue,
            // In repair mode TCP_MAXSEG gives the clamp, which is what TCPOPT_MAXSEG sets.
            MaxSegmentSize: GetInt(fd, Interop.IPPROTO_TCP, Interop.TCP_MAXSEG, "getsockopt(TCP_MAXSEG)"),
            SendWindowScale: wscale & 0xf,
            ReceiveWindowScale: wscale >> 4,
            Options: (TcpOptions)info[Interop.TcpInfoOptionsOffset],
            Timestamp: (uint)GetInt(fd, Interop.IPPROTO_TCP, Interop.TCP_TIMESTAMP, "getsockopt(TCP_TIMESTAMP)"),
            Window: new TcpWindow(window.snd_wl1, window.snd_wnd, window.max_window, window.rcv_wnd, window.rcv_wup),
            LocalFin: localFin,
            RemoteFinReceived: state is TcpState.CloseWait or TcpState.LastAck or TcpState.Closing or TcpState.TimeWait);
    }

    /// <summary>
    /// Where this end's FIN is, by the state: queued in FIN_WAIT1, CLOSING and LAST_ACK — not sent while
    /// SIOCOUTQNSD counts it — and acknowledged in FIN_WAIT2 (and TIME_WAIT).
    /// </summary>
    private static TcpFin LocalFin(TcpState state, int notSent) => state switch
    {
        TcpState.FinWait1 or TcpState.Closing or TcpState.LastAck => notSent > 0 ? TcpFin.NotSent : TcpFin.Sent,
        TcpState.FinWait2 or TcpState.TimeWait => TcpFin.Acknowledged,
        _ => TcpFin.None,
    };

    // What arriving packets move: where each queue ends, and how much of the send queue is left and unsent.
    /// <summary>
    /// Where the connection's queues end now (receive and send sequences, bytes queued to send, bytes
    /// never sent), cheaply: what packets that arrive change. Equal before and after a reading, nothing moved.
    /// </summary>
    public static (uint, uint, int, int) QueueEnds(int fd) =>
        (QueueSequence(fd, Interop.TCP_RECV_QUEUE), QueueSequence(fd, Interop.TCP_SEND_QUEUE),
         IoctlInt(fd, Interop.SIOCOUTQ, "ioctl(SIOCOUTQ)"), IoctlInt(fd, Interop.SIOCOUTQNSD, "ioctl(SIOCOUTQNSD)"));

    private static (uint Sequence, int Queued, byte[] Data) ReadQueue(int fd, int queue, ulong sizeRequest)
    {
        uint sequence = QueueSequence(fd, queue);
        int queued = IoctlInt(fd, sizeRequest, "ioctl(SIOCINQ/SIOCOUTQ)");
        return (sequence, queued, Peek(fd, queued, queue == Interop.TCP_RECV_QUEUE));
    }

    /// <summary>
    /// The selected queue, whole, in one peek: a peek always starts at the queue's head (once a
    /// program's SO_PEEK_OFF is set aside: only the receive queue's peek honours it). A buffer one byte
    /// longer than what came back shows there is no more; a peek of the send queue that does not fit
    /// still returns the whole queue's length.
    /// </summary>
    private static byte[] Peek(int fd, int expected, bool receiveQueue)
    {
        int peekOffset = receiveQueue ? PeekOffset(fd) : -1;
        // Peeked into a pooled buffer, kept in one of the exact size: a checkpoint of a thousand
        // connections allocates under the freeze, where fresh memory costs a page fault a page.
        var buffer = ArrayPool<byte>.Shared.Rent(expected + 1);
        try
        {
            while (true)
            {
                if (peekOffset >= 0)
                    SetInt(fd, Interop.SOL_SOCKET, Interop.SO_PEEK_OFF, 0, "setsockopt(SO_PEEK_OFF)");
                nint n;
                do
                {
                    n = Interop.Recv(fd, buffer, (nuint)buffer.Length, Interop.MSG_PEEK | Interop.MSG_DONTWAIT);
                }
                while (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR);
                if (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EAGAIN)
                    n = 0; // an empty receive queue
                else if (n < 0)
                    Errnos.Throw("recv(MSG_PEEK)", Target(fd));
                if (n < buffer.Length)
                    return buffer.AsSpan(0, (int)n).ToArray();
                if (n >= MaxQueueBytes)
                    throw new KernelCallException("recv(MSG_PEEK)", $"{Target(fd)}: a queue of more than {MaxQueueBytes} bytes", Errnos.ENOMEM);
                ArrayPool<byte>.Shared.Return(buffer);
                buffer = ArrayPool<byte>.Shared.Rent((int)Math.Max(n + 1, buffer.Length * 2L));
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
            if (peekOffset >= 0)
                SetInt(fd, Interop.SOL_SOCKET, Interop.SO_PEEK_OFF, peekOffset, "setsockopt(SO_PEEK_OFF)");
        }
    }

    // -1 when the program set none, or the kernel has no SO_PEEK_OFF for TCP (before 6.9).
    private static int PeekOffset(int fd)
    {
        int value = -1;
        uint length = sizeof(int);
        return Interop.Getsockopt(fd, Interop.SOL_SOCKET, Interop.SO_PEEK_OFF, MemoryMarshal.AsBytes(new Span<int>(ref value)), ref length) < 0 ? -1 : value;
    }

    /// <summary>
    /// Writes a refill with send: into the selected queue in repair mode, as new data otherwise. The
    /// socket's buffer grows until it holds the queue (the old socket's held it). MSG_DONTWAIT: in repair
    /// mode nothing ever drains a full send buffer, so a blocking send would wait forever.
    /// </summary>
    private static void Write(int fd, ReadOnlySpan<byte> data, int sizeOption, int forceOption, string call)
    {
        for (int sent = 0; sent < data.Length;)
        {
            nint n = Interop.Send(fd, data[sent..], (nuint)(data.Length - sent), Interop.MSG_DONTWAIT | Interop.MSG_NOSIGNAL);
            int errno = Marshal.GetLastPInvokeError();
            if (n > 0)
                sent += (int)n;
            else if (n < 0 && errno == Errnos.EINTR)
                continue;
            else if (n == 0 || errno is Errnos.EAGAIN or Errnos.ENOMEM)
                Grow(fd, sizeOption, forceOption, call);
            else
                Errnos.Throw(call, Target(fd));
        }
    }

    private static void Grow(int fd, int sizeOption, int forceOption, string call)
    {
        int size = GetInt(fd, Interop.SOL_SOCKET, sizeOption, "getsockopt(SO_SNDBUF/SO_RCVBUF)");
        if (size >= MaxQueueBytes)
            throw new KernelCallException(call, $"{Target(fd)}: the queue does not fit in a buffer of {size} bytes", Errnos.ENOMEM);
        // Root may go past wmem_max/rmem_max; the kernel doubles the value it is given.
        SetInt(fd, Interop.SOL_SOCKET, forceOption, size, "setsockopt(SO_SNDBUFFORCE/SO_RCVBUFFORCE)");
    }

    // TCP_REPAIR_OPTIONS: only taken before the first byte of the send queue.
    private static void SetOptions(int fd, TcpConnectionState state)
    {
        Span<TcpRepairOpt> options = stackalloc TcpRepairOpt[4];
        int count = 0;
        options[count++] = new TcpRepairOpt { opt_code = Interop.TCPOPT_MAXSEG, opt_val = (uint)state.MaxSegmentSize };
        if ((state.Options & TcpOptions.Sack) != 0)
            options[count++] = new TcpRepairOpt { opt_code = Interop.TCPOPT_SACK_PERMITTED };
        if ((state.Options & TcpOptions.WindowScale) != 0)
            options[count++] = new TcpRepairOpt { opt_code = Interop.TCPOPT_WINDOW, opt_val = (uint)(state.SendWindowScale | (state.ReceiveWindowScale << 16)) };
        if ((state.Options & TcpOptions.Timestamps) != 0)
            options[count++] = new TcpRepairOpt { opt_code = Interop.TCPOPT_TIMESTAMP };
        Check(Interop.Setsockopt(fd, Interop.IPPROTO_TCP, Interop.TCP_REPAIR_OPTIONS, MemoryMarshal.AsBytes(options[..count]), (uint)(count * TcpRepairOpt.Size)),
            "setsockopt(TCP_REPAIR_OPTIONS)", fd);
    }

    private static void SetWindow(int fd, TcpWindow w)
    {
        var window = new TcpRepairWindow
        {
            snd_wl1 = w.SendWl1, snd_wnd = w.SendWindow, max_window = w.MaxWindow, rcv_wnd = w.ReceiveWindow, rcv_wup = w.ReceiveWindowUpdate,
        };
        Check(Interop.Setsockopt(fd, Interop.IPPROTO_TCP, Interop.TCP_REPAIR_WINDOW, MemoryMarshal.AsBytes(new ReadOnlySpan<TcpRepairWindow>(in window)), TcpRepairWindow.Size),
            "setsockopt(TCP_REPAIR_WINDOW)", fd);
    }

    /// <summary>The connection's state (tcp_info's first byte).</summary>
    internal static TcpState StateOf(int fd)
    {
        Span<byte> info = stackalloc byte[TcpInfoHead];
        uint length = TcpInfoHead;
        Check(Interop.Getsockopt(fd, Interop.IPPROTO_TCP, Interop.TCP_INFO, info, ref length), "getsockopt(TCP_INFO)", fd);
        return (TcpState)info[Interop.TcpInfoStateOffset];
    }

    /// <summary>TCP_REPAIR_QUEUE: which queue the next sequence, send or peek acts on.</summary>
    internal static void Select(int fd, int queue) =>
        SetInt(fd, Interop.IPPROTO_TCP, Interop.TCP_REPAIR_QUEUE, queue, "setsockopt(TCP_REPAIR_QUEUE)");

    private static uint QueueSequence(int fd, int queue)
    {
        Select(fd, queue);
        return (uint)GetInt(fd, Interop.IPPROTO_TCP, Interop.TCP_QUEUE_SEQ, "getsockopt(TCP_QUEUE_SEQ)");
    }

    /// <summary>Where <paramref name="queue"/> starts (TCP_QUEUE_SEQ): only a socket in repair mode, not yet connected, takes it.</summary>
    internal static void SetQueueSequence(int fd, int queue, uint sequence)
    {
        Select(fd, queue);
        SetInt(fd, Interop.IPPROTO_TCP, Interop.TCP_QUEUE_SEQ, (int)sequence, "setsockopt(TCP_QUEUE_SEQ)");
    }

    private static byte[] Address(int fd, bool peer)
    {
        Span<byte> address = stackalloc byte[SockaddrSize];
        uint length = SockaddrSize;
        int result = peer ? Interop.Getpeername(fd, address, ref length) : Interop.Getsockname(fd, address, ref length);
        Check(result, peer ? "getpeername" : "getsockname", fd);
        return address[..(int)Math.Min(length, SockaddrSize)].ToArray();
    }

    private static int IoctlInt(int fd, ulong request, string call)
    {
        int value = 0;
        Check(Interop.Ioctl(fd, request, ref value), call, fd);
        return value;
    }

    private static int GetInt(int fd, int level, int name, string call) => SocketOptions.GetInt(fd, level, name, Target(fd), call);

    private static void SetInt(int fd, int level, int name, int value, string call) => SocketOptions.SetInt(fd, level, name, value, Target(fd), call);

    private static void Check(int result, string call, int fd) => Errnos.Check(result, call, Target(fd));

    private static string Target(int fd) => $"TCP socket fd {fd}";
}
