using System.Diagnostics;
using System.Net;
using System.Net.Sockets;
using Amber.Kernel.Net;

namespace Amber.Kernel.Tests;

/// <summary>
/// TCP_REPAIR on real loopback connections of the test process (root: CAP_NET_ADMIN). One end is
/// dumped with bytes queued both ways, closed in repair mode, made again on a new socket and let go;
/// both ends must then read exactly the bytes of their stream, old ones first, with no reset.
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
        Assert.Equal("setsockopt(TCP_REPAIR_QUEUE)", e.Call);
        Assert.Equal(Errnos.EPERM, e.Errno);
    }

    [Fact]
    public void RestoreRefusesAConnectionThatIsNotEstablished()
    {
        var state = new TcpConnectionState(2, [], [], TcpState.CloseWait, 0, 0, [], 0, [], 1460, 7, 7, TcpOptions.None, 0, default);
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        var e = Assert.Throws<NotSupportedException>(() => TcpRepair.Restore(Fd(socket), state));
        Assert.Contains("CloseWait", e.Message, StringComparison.Ordinal);
    }

    /// <summary>
    /// A connection whose one end (the one to restore) can hold a MiB in each queue, and whose other end
    /// takes little: most of a MiB written to it stays unsent.
    /// </summary>
    private static (Socket End, Socket Peer, Socket Listener) Connect(Variant variant, bool accepted)
    {
        var (family, listenAt, connectTo) = variant switch
        {
            Variant.V4 => (AddressFamily.InterNetwork, IPAddress.Loopback, IPAddress.Loopback),
            Variant.V6 => (AddressFamily.InterNetworkV6, IPAddress.IPv6Loopback, IPAddress.IPv6Loopback),
            _ => (AddressFamily.InterNetworkV6, IPAddress.Loopback, IPAddress.Loopback.MapToIPv6()),
        };
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
