using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Amber.Kernel.Net;

namespace Amber.Kernel.Tests;

/// <summary>
/// TCP_REPAIR on real loopback connections of the test process (root: CAP_NET_ADMIN). One end is
/// dumped with bytes queued both ways, closed in repair mode, made again on a new socket and let go;
/// both ends must then read exactly the bytes of their stream, old ones first, with no reset. Half-closed
/// pairs are made again on both ends, with their FINs.
/// </summary>
public sealed class TcpRepairTests
{
    // The numbers of linux/tcp.h and asm/socket.h the tests use on their own.
    private const int IpprotoTcp = 6;
    private const int TcpInfo = 11;
    private const int SolSocket = 1;
    private const int SoSndbufForce = 32;
    private const int SoPeekOff = 42;
    private const int SoRcvbufForce = 33;
    private const int Mib = 1 << 20;
    private const int NewBytes = 100_000;
    private static readonly TimeSpan Timeout = TimeSpan.FromSeconds(30);

    public enum Variant { V4, V6, V4MappedOnV6 }

    /// <summary>
    /// Bytes the restored end wrote before the dump, bytes its peer wrote, and bytes the restored end
    /// sent that were lost on the way (the peer never had them). After a MiB the peer's window is closed.
    /// </summary>
    public static TheoryData<Variant, bool, int, int, int> Cases()
    {
        var cases = new TheoryData<Variant, bool, int, int, int>();
        foreach (var variant in Enum.GetValues<Variant>())
        {
            cases.Add(variant, false, 0, 0, 0);
            cases.Add(variant, false, 5, 7, 0);
            cases.Add(variant, false, 5, 7, 1000);
            cases.Add(variant, false, Mib, Mib, 0);
            cases.Add(variant, false, Mib, Mib, 1000);
        }
        cases.Add(Variant.V4, true, 5, 7, 0);
        cases.Add(Variant.V6, true, Mib, Mib, 0);
        return cases;
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public async Task ConnectionComesBackWithItsQueues(Variant variant, bool accepted, int sentBefore, int receivedBefore, int lostInFlight)
    {
        var (end, peer, listener) = Connect(variant, accepted);
        using var _ = listener;
        using var __ = peer;
        using var ___ = end;
        var toPeer = new ByteStream(1);
        var toEnd = new ByteStream(2);

        end.Send(toPeer.Next(sentBefore));
        peer.Send(toEnd.Next(receivedBefore));
        WaitUntil(() => end.Available == receivedBefore, "the peer's bytes to arrive");
        // Delayed acknowledgments (200 ms at most) go out now: one that came after the old socket is gone
        // would be answered with a reset.
        Thread.Sleep(250);

        TcpRepair.Enter(Fd(end));
        var state = TcpRepair.Dump(Fd(end));
        Assert.Equal(TcpState.Established, state.State);
        Assert.Equal(variant == Variant.V4 ? 2 : 10, state.Family); // AF_INET, AF_INET6
        Assert.Equal(toEnd.Written[^state.ReceiveQueue.Length..], state.ReceiveQueue);
        Assert.Equal(receivedBefore, state.ReceiveQueue.Length);
        Assert.Equal(toPeer.Written[^state.SendQueue.Length..], state.SendQueue);
        if (sentBefore == Mib)
            Assert.True(state.NotSentBytes > Mib / 2, $"{state.NotSentBytes} unsent bytes in the send queue");
        // Linux agrees on all three by default (net.ipv4.tcp_timestamps, tcp_sack, tcp_window_scaling).
        Assert.Equal(TcpOptions.Timestamps | TcpOptions.Sack | TcpOptions.WindowScale, state.Options & (TcpOptions)7);
        Assert.True(state.MaxSegmentSize > 0);
        var local = end.LocalEndPoint!.Serialize();
        Assert.Equal(Enumerable.Range(0, local.Size).Select(i => local[i]), state.LocalAddress);

        end.Dispose(); // in repair mode: no FIN, no RST
        Thread.Sleep(50);
        AssertOpenAndQuiet(peer);
        if (lostInFlight > 0)
            state = LoseInFlight(state, toPeer, lostInFlight);

        using var restored = new Socket(end.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (variant == Variant.V4MappedOnV6)
            restored.DualMode = true; // IPV6_V6ONLY as the old socket had it, or bind refuses the v4-mapped address
        TcpRepair.Restore(Fd(restored), state);
        AssertRebuilt(state, TcpRepair.Dump(Fd(restored)));
        TcpRepair.Leave(Fd(restored));

        // Both ways at once: the peer's buffer is small, so the restored end's bytes only move as it reads.
        int peerTotal = toPeer.Total + NewBytes, endTotal = toEnd.Total + NewBytes;
        var cancel = TestContext.Current.CancellationToken;
        var peerReads = Task.Run(() => ReadExactly(peer, peerTotal), cancel);
        var endReads = Task.Run(() => ReadExactly(restored, endTotal), cancel);
        var writes = Task.Run(
            () =>
            {
                restored.Send(toPeer.Next(NewBytes));
                peer.Send(toEnd.Next(NewBytes));
            },
            cancel);
        await Task.WhenAll(peerReads, endReads, writes).WaitAsync(Timeout, cancel);
        Assert.Equal(toPeer.Written, await peerReads);
        Assert.Equal(toEnd.Written, await endReads);

        Thread.Sleep(50);
        Assert.Equal(0, peer.Available);
        Assert.Equal(0, restored.Available);
        AssertOpenAndQuiet(peer);
        AssertOpenAndQuiet(restored);
    }

    [Fact]
    public void DumpReadsTheWholeReceiveQueueWhateverThePeekOffset()
    {
        var (end, peer, listener) = Connect(Variant.V4, accepted: false);
        using var _ = listener;
        using var __ = peer;
        using var ___ = end;
        var toEnd = new ByteStream(3);
        peer.Send(toEnd.Next(100));
        WaitUntil(() => end.Available == 100, "the peer's bytes to arrive");
        end.SetRawSocketOption(SolSocket, SoPeekOff, BitConverter.GetBytes(40)); // the program's own peeks

        TcpRepair.Enter(Fd(end));
        var state = TcpRepair.Dump(Fd(end));

        Assert.Equal(toEnd.Written, state.ReceiveQueue);
        var offset = new byte[4];
        end.GetRawSocketOption(SolSocket, SoPeekOff, offset);
        Assert.Equal(40, BitConverter.ToInt32(offset));
        TcpRepair.Leave(Fd(end));
    }

    [Fact]
    public void DumpNeedsRepairMode()
    {
        var (end, peer, listener) = Connect(Variant.V4, accepted: false);
        using var _ = listener;
        using var __ = peer;
        using var ___ = end;
        var e = Assert.Throws<KernelCallException>(() => TcpRepair.Dump(Fd(end)));
        Assert.Equal("getsockopt(TCP_REPAIR_WINDOW)", e.Call); // the first call only repair mode allows
        Assert.Equal(Errnos.EPERM, e.Errno);
    }

    public static TheoryData<Variant, bool> AcceptQueueCases() => new()
    {
        { Variant.V4, true }, { Variant.V6, true }, { Variant.V4MappedOnV6, true }, { Variant.V4, false }, { Variant.V6, false },
    };

    /// <summary>
    /// Three connections wait in a listener's accept queue, the peers' bytes with them (none; some;
    /// more than one made-up segment carries), the last one's peer shut down. They are taken out and
    /// read, closed in repair mode, and handed back, behind a firewall that keeps the peers from the
    /// listener as the network lock does. The program then accepts them in the order they came, with
    /// the bytes, the FIN, and both ways working; no peer saw a reset. Without timestamps: as for a
    /// restore on another boot.
    /// </summary>
    [Theory]
    [MemberData(nameof(AcceptQueueCases))]
    public async Task ConnectionsWaitingInAnAcceptQueueComeBackInOrder(Variant variant, bool timestamps)
    {
        // v4-mapped: a dual-stack IPv6 listener, whose connections from an IPv4 client are IPv6 sockets.
        var (family, listenAt, connectTo) = variant == Variant.V4MappedOnV6
            ? (AddressFamily.InterNetwork, IPAddress.IPv6Any, IPAddress.Loopback)
            : Addresses(variant);
        using var listener = new Socket(listenAt.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        if (variant == Variant.V4MappedOnV6)
            listener.DualMode = true;
        listener.Bind(new IPEndPoint(listenAt, 0));
        listener.Listen(8);
        int[] sizes = [0, 700, 40_000];
        var streams = sizes.Select((_, i) => new ByteStream((byte)(10 + i))).ToArray();
        var clients = new List<Socket>();
        var ways = new List<(IPEndPoint From, IPEndPoint To)>();
        using var firewall = new Firewall();
        try
        {
            foreach (int size in sizes)
            {
                var client = new Socket(family, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = (int)Timeout.TotalMilliseconds };
                clients.Add(client);
                client.Connect(new IPEndPoint(connectTo, ((IPEndPoint)listener.LocalEndPoint!).Port));
                ways.Add((OnTheWire(client.LocalEndPoint!), OnTheWire(client.RemoteEndPoint!)));
                ways.Add((ways[^1].To, ways[^1].From));
                client.Send(streams[clients.Count - 1].Next(size));
            }
            clients[^1].Shutdown(SocketShutdown.Send);
            WaitUntil(() => AcceptQueueOf(listener) == sizes.Length, "the connections to wait in the accept queue");
            Thread.Sleep(250); // the listener's delayed acknowledgments go out

            firewall.Drop([.. ways]);
            var states = new List<TcpConnectionState>();
            for (Amber.Kernel.Files.HeldFile? taken; (taken = TcpAcceptQueue.Take(Fd(listener))) is not null;)
            {
                using var _ = taken; // closed in repair mode: nothing sent
                states.Add(TcpRepair.Dump(taken.Fd));
            }
            Assert.Equal(sizes.Length, states.Count);
            Assert.Equal(0, AcceptQueueOf(listener));
            for (int i = 0; i < states.Count; i++)
            {
                Assert.True(TcpAcceptQueue.CanRequeue(states[i]), $"connection {i}: {states[i].State}");
                Assert.Equal(streams[i].Written, states[i].ReceiveQueue);
                Assert.Equal(i == sizes.Length - 1 ? TcpState.CloseWait : TcpState.Established, states[i].State);
            }
            foreach (var state in states)
                TcpAcceptQueue.Requeue(Fd(listener), state, timestamps);
            Assert.Equal(sizes.Length, AcceptQueueOf(listener));
            firewall.Drop();

            var cancel = TestContext.Current.CancellationToken;
            for (int i = 0; i < clients.Count; i++)
            {
                using var accepted = listener.Accept();
                accepted.ReceiveTimeout = (int)Timeout.TotalMilliseconds;
                Assert.Equal(ways[2 * i].From, OnTheWire(accepted.RemoteEndPoint!));
                var fromServer = new ByteStream((byte)(20 + i));
                bool closed = i == clients.Count - 1;
                int total = streams[i].Total + NewBytes;
                var reads = Task.Run(() => closed ? ReadToEnd(accepted) : ReadExactly(accepted, total), cancel);
                if (!closed)
                    clients[i].Send(streams[i].Next(NewBytes));
                accepted.Send(fromServer.Next(NewBytes));
                Assert.Equal(fromServer.Written, await Task.Run(() => ReadExactly(clients[i], NewBytes), cancel).WaitAsync(Timeout, cancel));
                Assert.Equal(streams[i].Written, await reads.WaitAsync(Timeout, cancel));
                Assert.Equal(0, (int)clients[i].GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!);
                Assert.Equal(timestamps, (TcpInfoOptions(accepted) & TcpOptions.Timestamps) != 0);
            }
        }
        finally
        {
            foreach (var c in clients)
                c.Dispose();
        }
    }

    private static int AcceptQueueOf(Socket listener)
    {
        var info = new byte[32];
        listener.GetRawSocketOption(IpprotoTcp, TcpInfo, info);
        return BitConverter.ToInt32(info, 24);
    }

    private static TcpOptions TcpInfoOptions(Socket socket)
    {
        var info = new byte[8];
        socket.GetRawSocketOption(IpprotoTcp, TcpInfo, info);
        return (TcpOptions)info[5];
    }

    /// <summary>
    /// A half-closed pair, as one shutdown or two left it, with bytes queued each way where they fit; A
    /// shut down first. A FIN, bytes or an acknowledgment that must stay lost are dropped by the test's
    /// firewall on arrival (the sender counts them sent).
    /// </summary>
    public enum HalfClosed
    {
        /// <summary>A shut down and B acknowledged: FIN_WAIT2 and CLOSE_WAIT.</summary>
        FinWait2AndCloseWait,

        /// <summary>Then B shut down behind bytes A's full receive buffer does not take: LAST_ACK, its FIN not sent.</summary>
        LastAckNotSentAndFinWait2,

        /// <summary>Then B shut down and its last bytes and FIN were lost: LAST_ACK, its FIN sent.</summary>
        LastAckSentAndFinWait2,

        /// <summary>
        /// A shut down behind bytes B's receive window does not take, and B's acknowledgments of those it
        /// took were lost: FIN_WAIT1, its FIN not sent, bytes sent and not sent.
        /// </summary>
        FinWait1NotSentAndEstablished,

        /// <summary>A's bytes and FIN came to B; B's acknowledgment and bytes were lost: FIN_WAIT1 and CLOSE_WAIT.</summary>
        FinWait1SentAndCloseWait,

        /// <summary>A's bytes and FIN were lost; then B shut down and its bytes and FIN came to A: CLOSING and FIN_WAIT1.</summary>
        ClosingAndFinWait1,

        /// <summary>A shut down behind bytes B's full receive buffer does not take, then B shut down: CLOSING, its FIN not sent, and FIN_WAIT2.</summary>
        ClosingNotSentAndFinWait2,
    }

    public static TheoryData<HalfClosed, Variant> HalfClosedCases()
    {
        var cases = new TheoryData<HalfClosed, Variant>();
        foreach (var scenario in Enum.GetValues<HalfClosed>())
        {
            cases.Add(scenario, Variant.V4);
            cases.Add(scenario, Variant.V6);
        }
        cases.Add(HalfClosed.ClosingAndFinWait1, Variant.V4MappedOnV6);
        return cases;
    }

    /// <summary>
    /// Both ends of a half-closed pair are dumped, closed in repair mode and made again, behind a
    /// firewall that keeps their packets apart (as amber's network lock) but lets the segments made up
    /// as a peer's through. Each must come back in its state with its queues and FINs, then go on as the
    /// pair would have: every byte read once, then end of file; a write after its own shutdown fails
    /// with EPIPE; the FINs and bytes that were lost sent again; both ends closed in the end.
    /// </summary>
    [Theory]
    [MemberData(nameof(HalfClosedCases))]
    public async Task HalfClosedConnectionComesBackOnBothEnds(HalfClosed scenario, Variant variant)
    {
        var (end, peer, listener) = Connect(variant, accepted: false);
        using var _ = listener;
        // Connect's peer has a small receive buffer: it is A when B's bytes must fill A's, B otherwise.
        var (a, b) = scenario == HalfClosed.LastAckNotSentAndFinWait2 ? (peer, end) : (end, peer);
        using var __ = a;
        using var ___ = b;
        var toA = new ByteStream(4);
        var toB = new ByteStream(5);
        using var firewall = new Firewall();
        var (expectA, expectB) = MakeHalfClosed(scenario, a, b, toA, toB, firewall);

        // From now until both live again nothing of theirs reaches the other, as amber's network lock does.
        firewall.Drop(Way(a, b), Way(b, a));
        TcpRepair.Enter(Fd(a));
        TcpRepair.Enter(Fd(b));
        var stateA = TcpRepair.Dump(Fd(a));
        var stateB = TcpRepair.Dump(Fd(b));
        AssertHalfClosed(expectA, stateA, toA, toB, stateB);
        AssertHalfClosed(expectB, stateB, toB, toA, stateA);
        a.Dispose(); // in repair mode: no FIN, no RST
        b.Dispose();

        // IPv4 sends what was never sent at once; the others when both exist, as amber does.
        bool later = variant != Variant.V4;
        using var restoredA = Rebuild(stateA, variant, sendUnsent: !later);
        using var restoredB = Rebuild(stateB, variant, sendUnsent: !later);
        if (later)
        {
            TcpRepair.SendUnsent(Fd(restoredA), stateA);
            TcpRepair.SendUnsent(Fd(restoredB), stateB);
        }
        AssertRebuiltHalfClosed(stateA, restoredA);
        AssertRebuiltHalfClosed(stateB, restoredB);
        firewall.Drop();
        TcpRepair.Leave(Fd(restoredA));
        TcpRepair.Leave(Fd(restoredB));

        var cancel = TestContext.Current.CancellationToken;
        var readsA = Task.Run(() => ReadToEnd(restoredA), cancel);
        var readsB = Task.Run(() => ReadToEnd(restoredB), cancel);
        var writes = Task.Run(
            () =>
            {
                GoOn(restoredA, stateA, toB);
                GoOn(restoredB, stateB, toA);
            },
            cancel);
        await Task.WhenAll(readsA, readsB, writes).WaitAsync(Timeout, cancel);
        Assert.Equal(toA.Written, await readsA);
        Assert.Equal(toB.Written, await readsB);
        // The last FIN acknowledged: one end went through TIME_WAIT (its socket shows CLOSE), the other is closed.
        WaitUntil(() => StateOf(restoredA) == TcpState.Close && StateOf(restoredB) == TcpState.Close, "both ends to close");
        Assert.Equal(0, (int)restoredA.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!);
        Assert.Equal(0, (int)restoredB.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!);
    }

    [Theory]
    [InlineData(TcpState.TimeWait)]
    [InlineData(TcpState.Close)]
    [InlineData(TcpState.SynSent)]
    [InlineData(TcpState.SynReceived)]
    [InlineData(TcpState.Listen)]
    public void RestoreRefusesAStateItCannotRebuildByName(TcpState refused)
    {
        Assert.False(TcpRepair.CanRebuild(refused));
        var state = new TcpConnectionState(2, [], [], refused, 0, 0, [], 0, [], 1460, 7, 7, TcpOptions.None, 0, default);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var e = Assert.Throws<NotSupportedException>(() => TcpRepair.Restore(Fd(socket), state));
        Assert.Contains($"state {refused}", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void CanRebuildTheEstablishedAndHalfClosedStates()
    {
        var rebuilt = Enum.GetValues<TcpState>().Where(TcpRepair.CanRebuild).Order();
        Assert.Equal([TcpState.Established, TcpState.FinWait1, TcpState.FinWait2, TcpState.CloseWait, TcpState.LastAck, TcpState.Closing], rebuilt);
    }

    /// <summary>A state without the FINs it implies (an image that did not save them) is refused, not half made.</summary>
    [Theory]
    [InlineData(TcpState.FinWait2, TcpFin.None, false)]
    [InlineData(TcpState.CloseWait, TcpFin.None, false)]
    [InlineData(TcpState.LastAck, TcpFin.Acknowledged, true)]
    [InlineData(TcpState.Established, TcpFin.Sent, false)]
    public void RestoreRefusesFinsThatDoNotFitTheState(TcpState refused, TcpFin localFin, bool remoteFin)
    {
        var state = new TcpConnectionState(2, [], [], refused, 0, 0, [], 0, [], 1460, 7, 7, TcpOptions.None, 0, default, localFin, remoteFin);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var e = Assert.Throws<ArgumentException>(() => TcpRepair.Restore(Fd(socket), state));
        Assert.Contains($"state {refused}", e.Message, StringComparison.Ordinal);
    }

    private readonly record struct Expected(TcpState State, TcpFin LocalFin, bool RemoteFinReceived);

    /// <summary>Takes the pair to <paramref name="scenario"/>; what each end's dump must then say.</summary>
    private static (Expected A, Expected B) MakeHalfClosed(HalfClosed scenario, Socket a, Socket b, ByteStream toA, ByteStream toB, Firewall firewall)
    {
        const int Full = 200_000; // more than a receive buffer of 4 KiB takes: most stays unsent
        (Expected, Expected) expected;
        switch (scenario)
        {
            case HalfClosed.FinWait2AndCloseWait:
                Exchange(a, b, toA, toB, 3000, 1000);
                a.Shutdown(SocketShutdown.Send);
                WaitForStates(a, TcpState.FinWait2, b, TcpState.CloseWait);
                expected = (new(TcpState.FinWait2, TcpFin.Acknowledged, false), new(TcpState.CloseWait, TcpFin.None, true));
                break;
            case HalfClosed.LastAckNotSentAndFinWait2:
                Exchange(a, b, toA, toB, 0, 1000);
                b.Send(toA.Next(Full));
                a.Shutdown(SocketShutdown.Send);
                WaitForStates(a, TcpState.FinWait2, b, TcpState.CloseWait);
                b.Shutdown(SocketShutdown.Send);
                WaitForStates(a, TcpState.FinWait2, b, TcpState.LastAck);
                expected = (new(TcpState.FinWait2, TcpFin.Acknowledged, false), new(TcpState.LastAck, TcpFin.NotSent, true));
                break;
            case HalfClosed.LastAckSentAndFinWait2:
                Exchange(a, b, toA, toB, 3000, 1000);
                a.Shutdown(SocketShutdown.Send);
                WaitForStates(a, TcpState.FinWait2, b, TcpState.CloseWait);
                firewall.Drop(Way(b, a));
                b.Send(toA.Next(2000));
                b.Shutdown(SocketShutdown.Send);
                WaitForStates(a, TcpState.FinWait2, b, TcpState.LastAck);
                expected = (new(TcpState.FinWait2, TcpFin.Acknowledged, false), new(TcpState.LastAck, TcpFin.Sent, true));
                break;
            case HalfClosed.FinWait1NotSentAndEstablished:
                Exchange(a, b, toA, toB, 1000, 0);
                firewall.Drop(Way(b, a));
                a.Send(toB.Next(Full));
                a.Shutdown(SocketShutdown.Send);
                WaitForStates(a, TcpState.FinWait1, b, TcpState.Established);
                expected = (new(TcpState.FinWait1, TcpFin.NotSent, false), new(TcpState.Established, TcpFin.None, false));
                break;
            case HalfClosed.FinWait1SentAndCloseWait:
                Exchange(a, b, toA, toB, 1000, 0);
                firewall.Drop(Way(b, a));
                a.Send(toB.Next(1500));
                a.Shutdown(SocketShutdown.Send);
                WaitForStates(a, TcpState.FinWait1, b, TcpState.CloseWait);
                b.Send(toA.Next(700));
                expected = (new(TcpState.FinWait1, TcpFin.Sent, false), new(TcpState.CloseWait, TcpFin.None, true));
                break;
            case HalfClosed.ClosingNotSentAndFinWait2:
                Exchange(a, b, toA, toB, 1000, 0);
                a.Send(toB.Next(Full));
                a.Shutdown(SocketShutdown.Send);
                WaitForStates(a, TcpState.FinWait1, b, TcpState.Established);
                b.Send(toA.Next(800));
                b.Shutdown(SocketShutdown.Send);
                WaitForStates(a, TcpState.Closing, b, TcpState.FinWait2);
                expected = (new(TcpState.Closing, TcpFin.NotSent, true), new(TcpState.FinWait2, TcpFin.Acknowledged, false));
                break;
            default:
                Exchange(a, b, toA, toB, 500, 600);
                firewall.Drop(Way(a, b));
                a.Send(toB.Next(1500));
                a.Shutdown(SocketShutdown.Send);
                WaitForStates(a, TcpState.FinWait1, b, TcpState.Established);
                b.Send(toA.Next(800));
                b.Shutdown(SocketShutdown.Send);
                WaitForStates(a, TcpState.Closing, b, TcpState.FinWait1);
                expected = (new(TcpState.Closing, TcpFin.Sent, true), new(TcpState.FinWait1, TcpFin.Sent, false));
                break;
        }
        // Delayed acknowledgments go out now, not while the ends are read.
        Thread.Sleep(250);
        return expected;
    }

    /// <summary>Bytes each way, all of them arrived (and acknowledged, soon).</summary>
    private static void Exchange(Socket a, Socket b, ByteStream toA, ByteStream toB, int countToA, int countToB)
    {
        a.Send(toB.Next(countToB));
        b.Send(toA.Next(countToA));
        WaitUntil(() => a.Available == countToA && b.Available == countToB, "the bytes to arrive");
    }

    private static void WaitForStates(Socket a, TcpState stateA, Socket b, TcpState stateB) =>
        WaitUntil(() => StateOf(a) == stateA && StateOf(b) == stateB, $"{stateA} and {stateB}");

    /// <summary>
    /// The dump of one end says what its state implies, and its receive queue and its peer's send queue
    /// hold the bytes written to it, in order, none missing (bytes it has and the peer does not know of are in both);
    /// a FIN not sent waits behind exactly the bytes the peer never had.
    /// </summary>
    private static void AssertHalfClosed(Expected expected, TcpConnectionState state, ByteStream incoming, ByteStream outgoing, TcpConnectionState peer)
    {
        Assert.Equal(expected, new Expected(state.State, state.LocalFin, state.RemoteFinReceived));
        Assert.Equal(incoming.Written[..state.ReceiveQueue.Length], state.ReceiveQueue);
        Assert.Equal(incoming.Written[^peer.SendQueue.Length..], peer.SendQueue);
        Assert.True(state.ReceiveQueue.Length + peer.SendQueue.Length >= incoming.Total,
            $"{state.ReceiveQueue.Length} bytes received and {peer.SendQueue.Length} queued of {incoming.Total} written");
        if (expected.LocalFin == TcpFin.NotSent)
        {
            // Nothing was lost: the bytes sent and not acknowledged yet are those the peer has, the rest waits with the FIN.
            Assert.True(state.NotSentBytes > 0, "a FIN not sent waits behind bytes not sent");
            Assert.Equal(peer.ReceiveQueue.Length + state.SendQueue.Length - outgoing.Total, state.SentBytes);
        }
        if (expected.LocalFin == TcpFin.Sent)
            Assert.Equal(0, state.NotSentBytes);
    }

    /// <summary>A new socket for <paramref name="state"/>, made again and left in repair mode.</summary>
    private static Socket Rebuild(TcpConnectionState state, Variant variant, bool sendUnsent)
    {
        var family = state.Family == 2 ? AddressFamily.InterNetwork : AddressFamily.InterNetworkV6;
        var socket = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
        if (variant == Variant.V4MappedOnV6 && family == AddressFamily.InterNetworkV6)
            socket.DualMode = true;
        socket.ReceiveTimeout = socket.SendTimeout = (int)Timeout.TotalMilliseconds;
        TcpRepair.Restore(Fd(socket), state, sendUnsent);
        return socket;
    }

    /// <summary>The rebuilt end, still in repair mode, is the old one: the same state, FINs, queues and sequences.</summary>
    private static void AssertRebuiltHalfClosed(TcpConnectionState old, Socket socket)
    {
        var rebuilt = TcpRepair.Dump(Fd(socket));
        if (old.RemoteFinReceived && old.State != TcpState.Closing)
        {
            // The peer's FIN made up again is acknowledged again (a delayed ACK, which the peer takes as
            // a duplicate): that announces the new socket's receive window, which never shrinks.
            Assert.True(rebuilt.Window.ReceiveWindow >= old.Window.ReceiveWindow, $"window {rebuilt.Window.ReceiveWindow}, {old.Window.ReceiveWindow} before");
            rebuilt = rebuilt with { Window = rebuilt.Window with { ReceiveWindow = old.Window.ReceiveWindow } };
        }
        AssertRebuilt(old, rebuilt);
        Assert.Equal((old.State, old.LocalFin, old.RemoteFinReceived), (rebuilt.State, rebuilt.LocalFin, rebuilt.RemoteFinReceived));
    }

    /// <summary>
    /// What the program of an end does next: after its own shutdown a write fails with EPIPE; otherwise
    /// it writes more, then shuts down.
    /// </summary>
    private static void GoOn(Socket socket, TcpConnectionState state, ByteStream outgoing)
    {
        if (state.LocalFin != TcpFin.None)
        {
            var e = Assert.Throws<SocketException>(() => socket.Send([1]));
            Assert.Equal(SocketError.Shutdown, e.SocketErrorCode); // EPIPE
            return;
        }
        socket.Send(outgoing.Next(NewBytes));
        socket.Shutdown(SocketShutdown.Send);
    }

    private static byte[] ReadToEnd(Socket socket)
    {
        var data = new List<byte>();
        var buffer = new byte[64 * 1024];
        int n;
        while ((n = socket.Receive(buffer)) > 0)
            data.AddRange(buffer.AsSpan(0, n));
        return [.. data];
    }

    private static TcpState StateOf(Socket socket)
    {
        var info = new byte[8];
        socket.GetRawSocketOption(IpprotoTcp, TcpInfo, info);
        return (TcpState)info[0];
    }

    /// <summary>The packets from <paramref name="from"/> to <paramref name="to"/>, by their addresses as the packets carry them.</summary>
    private static (IPEndPoint From, IPEndPoint To) Way(Socket from, Socket to) => (OnTheWire(from.LocalEndPoint!), OnTheWire(to.LocalEndPoint!));

    private static IPEndPoint OnTheWire(EndPoint endPoint)
    {
        var e = (IPEndPoint)endPoint;
        return e.Address.IsIPv4MappedToIPv6 ? new IPEndPoint(e.Address.MapToIPv4(), e.Port) : e;
    }

    /// <summary>
    /// A connection whose one end (the one to restore) can hold a MiB in each queue, and whose other end
    /// takes little: most of a MiB written to it stays unsent.
    /// </summary>
    private static (Socket End, Socket Peer, Socket Listener) Connect(Variant variant, bool accepted)
    {
        var (family, listenAt, connectTo) = Addresses(variant);
        var listener = new Socket(listenAt.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        var client = new Socket(family, SocketType.Stream, ProtocolType.Tcp);
        if (variant == Variant.V4MappedOnV6)
            client.DualMode = true;
        // Buffers before the handshake, which sets the window scale; the accepted socket inherits the listener's.
        Large(accepted ? listener : client);
        (accepted ? client : listener).ReceiveBufferSize = 4096;
        listener.Bind(new IPEndPoint(listenAt, 0));
        listener.Listen(1);
        client.Connect(new IPEndPoint(connectTo, ((IPEndPoint)listener.LocalEndPoint!).Port));
        var server = listener.Accept();
        foreach (var s in new[] { client, server })
            s.ReceiveTimeout = s.SendTimeout = (int)Timeout.TotalMilliseconds;
        return accepted ? (server, client, listener) : (client, server, listener);
    }

    /// <summary>The client's family, the listener's address and the address the client connects to.</summary>
    private static (AddressFamily Family, IPAddress ListenAt, IPAddress ConnectTo) Addresses(Variant variant) => variant switch
    {
        Variant.V4 => (AddressFamily.InterNetwork, IPAddress.Loopback, IPAddress.Loopback),
        Variant.V6 => (AddressFamily.InterNetworkV6, IPAddress.IPv6Loopback, IPAddress.IPv6Loopback),
        _ => (AddressFamily.InterNetworkV6, IPAddress.Loopback, IPAddress.Loopback.MapToIPv6()),
    };

    private static void Large(Socket socket)
    {
        socket.SetRawSocketOption(SolSocket, SoSndbufForce, BitConverter.GetBytes(4 * Mib));
        socket.SetRawSocketOption(SolSocket, SoRcvbufForce, BitConverter.GetBytes(4 * Mib));
    }

    /// <summary>
    /// The state as if <paramref name="count"/> more bytes had gone out just before the dump and been lost
    /// on the way: the restored end has to send them again, when the peer's acknowledgments show the gap
    /// or on a timeout. Made up rather than arranged: the old socket would send them again itself (a tail
    /// loss probe, 200 ms on), and an answer coming after its close would reset the connection.
    /// </summary>
    private static TcpConnectionState LoseInFlight(TcpConnectionState state, ByteStream toPeer, int count)
    {
        if (state.NotSentBytes >= count)
            return state with { NotSentBytes = state.NotSentBytes - count };
        Assert.Equal(0, state.NotSentBytes);
        return state with { SendQueue = [.. state.SendQueue, .. toPeer.Next(count)], SendSequence = state.SendSequence + (uint)count };
    }

    /// <summary>The new socket, still in repair mode, is the old one: the same queues at the same sequences.</summary>
    private static void AssertRebuilt(TcpConnectionState old, TcpConnectionState rebuilt)
    {
        Assert.Equal(old.LocalAddress, rebuilt.LocalAddress);
        Assert.Equal(old.RemoteAddress, rebuilt.RemoteAddress);
        Assert.Equal(old.ReceiveSequence, rebuilt.ReceiveSequence);
        Assert.Equal(old.ReceiveQueue, rebuilt.ReceiveQueue);
        Assert.Equal(old.SendSequence, rebuilt.SendSequence);
        Assert.Equal(old.SendQueue, rebuilt.SendQueue);
        // The bytes never sent went out as new ones, as far as the peer's window let them.
        Assert.True(rebuilt.NotSentBytes <= old.NotSentBytes, $"{rebuilt.NotSentBytes} unsent, {old.NotSentBytes} before");
        Assert.Equal(old.Window, rebuilt.Window);
        Assert.Equal((old.Options, old.SendWindowScale, old.ReceiveWindowScale, old.MaxSegmentSize),
            (rebuilt.Options & (TcpOptions)7, rebuilt.SendWindowScale, rebuilt.ReceiveWindowScale, rebuilt.MaxSegmentSize));
        // The timestamp clock goes on from where it was (in ms: this took less than a few seconds).
        Assert.InRange(rebuilt.Timestamp - old.Timestamp, 0u, 5000u);
    }

    /// <summary>Still established (no FIN, no RST came), no error pending, and nothing to read.</summary>
    private static void AssertOpenAndQuiet(Socket socket)
    {
        var info = new byte[8];
        socket.GetRawSocketOption(IpprotoTcp, TcpInfo, info);
        Assert.Equal(TcpState.Established, (TcpState)info[0]);
        Assert.Equal(0, (int)socket.GetSocketOption(SocketOptionLevel.Socket, SocketOptionName.Error)!);
        if (socket.Available == 0)
        {
            // A read would give EAGAIN, not 0 (end of file) or ECONNRESET: peeked, so no window update goes out.
            socket.Blocking = false;
            var e = Assert.Throws<SocketException>(() => socket.Receive(new byte[1], SocketFlags.Peek));
            Assert.Equal(SocketError.WouldBlock, e.SocketErrorCode);
            socket.Blocking = true;
        }
    }

    private static byte[] ReadExactly(Socket socket, int count)
    {
        var data = new byte[count];
        for (int at = 0; at < count;)
        {
            int n = socket.Receive(data, at, count - at, SocketFlags.None);
            Assert.True(n > 0, $"end of file after {at} of {count} bytes");
            at += n;
        }
        return data;
    }

    private static void WaitUntil(Func<bool> condition, string what)
    {
        var clock = Stopwatch.StartNew();
        while (!condition())
        {
            Assert.True(clock.Elapsed < Timeout, $"timed out waiting for {what}");
            Thread.Sleep(5);
        }
    }

    private static int Fd(Socket socket) => (int)socket.Handle;

    /// <summary>
    /// An nftables table of the test's own that drops the chosen ways of a connection on input (so their
    /// sender counts them sent, as packets lost on the way), except the segments TcpRepair makes up as a
    /// peer's (<see cref="TcpRepair.PeerSegmentMark"/>).
    /// </summary>
    private sealed class Firewall : IDisposable
    {
        private static int _count;
        private readonly string _table = $"amber_test_tcprepair_{Environment.ProcessId}_{Interlocked.Increment(ref _count)}";
        private bool _made;

        /// <summary>From now on drops exactly these ways; none lets everything through. One transaction.</summary>
        public void Drop(params (IPEndPoint From, IPEndPoint To)[] ways)
        {
            var script = new StringBuilder();
            script.Append($"table inet {_table} {{\n  chain input {{\n    type filter hook input priority -200; policy accept;\n  }}\n}}\n");
            script.Append($"flush chain inet {_table} input\n");
            foreach (var (from, to) in ways)
            {
                string ip = from.AddressFamily == AddressFamily.InterNetwork ? "ip" : "ip6";
                script.Append($"add rule inet {_table} input {ip} saddr {from.Address} tcp sport {from.Port} {ip} daddr {to.Address} tcp dport {to.Port} ");
                script.Append($"meta mark != 0x{TcpRepair.PeerSegmentMark:x} drop\n");
            }
            Nftables.Apply(script.ToString(), $"the test table {_table}");
            _made = true;
        }

        public void Dispose()
        {
            if (_made)
                Nftables.Apply($"delete table inet {_table}\n", $"the test table {_table}");
        }
    }

    /// <summary>One direction of the connection: a byte pattern with no short period, and what was written of it.</summary>
    private sealed class ByteStream(byte seed)
    {
        private readonly List<byte> _written = [];

        public int Total => _written.Count;

        public byte[] Written => [.. _written];

        public byte[] Next(int count)
        {
            var bytes = new byte[count];
            for (int i = 0; i < count; i++)
                bytes[i] = (byte)(((uint)(_written.Count + i) * 2654435761u >> 24) ^ seed);
            _written.AddRange(bytes);
            return bytes;
        }
    }
}
