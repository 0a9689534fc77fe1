using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Amber.Integration.Tests;

/// <summary>
/// Connected UDP sockets with datagrams waiting in their receive queues (udpseq): every datagram is
/// numbered and checked by its receiver — number, content, source address — so one lost, duplicated
/// or reordered by a checkpoint or a restore is a FAIL.
/// </summary>
public sealed partial class UdpTests
{
    /// <summary>A pair inside one process, datagrams queued both ways at every moment, two cycles.</summary>
    [Theory]
    [InlineData("4")]
    [InlineData("6")]
    public void AConnectedPairWithDatagramsQueuedBothWaysSurvivesTwoCycles(string family)
    {
        using var dir = new TestDir("udppair" + family);
        using var target = TargetProcess.StartC("udpseq", dir, "pair", family);
        target.WaitForLine(l => l.StartsWith("READY", StringComparison.Ordinal), "READY");
        target.WaitForTicks(5);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            // Both ends were saved connected with their queues (5 waiting each way between ticks).
            var queues = Queued(AmberCli.Run("inspect", dir[$"img{cycle}"]).ShouldSucceed().Stdout);
            Assert.Equal(2, queues.Count);
            Assert.All(queues, q => Assert.True(q.Datagrams >= 5, $"only {q.Datagrams} datagrams were queued: {q.Line}"));
            Assert.All(queues, q => Assert.Contains(family == "4" ? "UDP 127.0.0.1:" : "UDP [::1]:", q.Line));
            target.WaitForTicks(10);
        }
        target.StopAndVerify();
    }

    /// <summary>
    /// A client whose peer is a socket of the test's, outside the checkpoint: what the peer sent waits
    /// in the client's queue through two cycles, then is read first, before what the peer sends after.
    /// The client's own SO_PEEK_OFF (moved by a peek of its own) is kept, and it sends from the same port.
    /// </summary>
    [Theory]
    [InlineData("4")]
    [InlineData("6")]
    public void AClientOfAPeerOutsideReadsWhatWaitedThenWhatCameAfter(string family)
    {
        using var dir = new TestDir("udpclient" + family);
        using var peer = Peer(family);
        using var target = TargetProcess.StartC("udpseq", dir, "client", family, ((IPEndPoint)peer.LocalEndPoint!).Port.ToString(CultureInfo.InvariantCulture));
        var client = ClientEndPoint(target, family);
        for (uint seq = 1; seq <= 5; seq++)
            peer.SendTo(Datagram(seq), client);
        File.WriteAllText(dir["peek"], "");
        target.WaitForLine(l => l.StartsWith("PEEKED", StringComparison.Ordinal), "PEEKED");
        uint sent = 5;
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            var queue = Assert.Single(Queued(AmberCli.Run("inspect", dir[$"img{cycle}"]).ShouldSucceed().Stdout));
            Assert.Equal((int)sent, queue.Datagrams);
            Assert.Contains($"-> {Format(peer.LocalEndPoint!)}", queue.Line);
            target.WaitForTicks(3);
            // It sends from the same address, to the same peer.
            int tick = target.LastTick();
            ReceiveTick(peer, client, tick);
            peer.SendTo(Datagram(++sent), client);
            peer.SendTo(Datagram(++sent), client);
        }
        Assert.DoesNotContain(target.Lines(), l => l.StartsWith("GOT", StringComparison.Ordinal));
        File.WriteAllText(dir["read"], "");
        target.WaitForLine(l => l == $"GOT {sent}", $"GOT {sent}");
        for (uint more = 1; more <= 3; more++)
            peer.SendTo(Datagram(++sent), client);
        target.WaitForLine(l => l == $"GOT {sent}", $"GOT {sent}");
        Assert.Equal(Enumerable.Range(1, (int)sent).Select(i => $"GOT {i}"), target.Lines().Where(l => l.StartsWith("GOT", StringComparison.Ordinal)));
        target.StopAndVerify();
    }

    /// <summary>
    /// A checkpoint that leaves the program running reads its queue without taking anything from it:
    /// the program then reads exactly the datagrams that waited, its SO_PEEK_OFF where it was; the
    /// image restores the same queue later.
    /// </summary>
    [Fact]
    public void ACheckpointThatLeavesItRunningLeavesTheQueueAsItWas()
    {
        using var dir = new TestDir("udpleave");
        using var peer = Peer("4");
        using var target = TargetProcess.StartC("udpseq", dir, "client", "4", ((IPEndPoint)peer.LocalEndPoint!).Port.ToString(CultureInfo.InvariantCulture));
        var client = ClientEndPoint(target, "4");
        for (uint seq = 1; seq <= 6; seq++)
            peer.SendTo(Datagram(seq), client);
        File.WriteAllText(dir["peek"], "");
        target.WaitForLine(l => l.StartsWith("PEEKED", StringComparison.Ordinal), "PEEKED");
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"], "--leave-running").ShouldSucceed();
        Assert.Equal(6, Assert.Single(Queued(AmberCli.Run("inspect", dir["img"]).ShouldSucceed().Stdout)).Datagrams);
        target.WaitForTicks(3);
        File.WriteAllText(dir["read"], "");
        target.WaitForLine(l => l == "GOT 6", "GOT 6");
        target.WaitForTicks(3);
        Assert.Equal(Enumerable.Range(1, 6).Select(i => $"GOT {i}"), target.Lines().Where(l => l.StartsWith("GOT", StringComparison.Ordinal)));

        // The image holds the queue as it was: the restored program reads the same six again.
        Amber.Kernel.Processes.Spawner.Kill(target.Pid, 9);
        target.ReapKilled();
        AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        target.Restored();
        target.WaitForTicks(3);
        var got = target.Lines().Where(l => l.StartsWith("GOT", StringComparison.Ordinal)).ToList();
        Assert.Equal(Enumerable.Range(1, 6).Concat(Enumerable.Range(1, 6)).Select(i => $"GOT {i}"), got);
        target.StopAndVerify();
    }

    /// <summary>udpseq's datagram: its number (big endian), then 4 + seq*97 % 1400 bytes of (seq*31 + j).</summary>
    private static byte[] Datagram(uint seq)
    {
        var b = new byte[8 + seq * 97 % 1400];
        BinaryPrimitives.WriteUInt32BigEndian(b, seq);
        for (int j = 4; j < b.Length; j++)
            b[j] = (byte)(seq * 31 + j);
        return b;
    }

    private static Socket Peer(string family)
    {
        var v6 = family == "6";
        var s = new Socket(v6 ? AddressFamily.InterNetworkV6 : AddressFamily.InterNetwork, SocketType.Dgram, ProtocolType.Udp);
        s.Bind(new IPEndPoint(v6 ? IPAddress.IPv6Loopback : IPAddress.Loopback, 0));
        s.ReceiveTimeout = 5000;
        return s;
    }

    private static IPEndPoint ClientEndPoint(TargetProcess target, string family)
    {
        string ready = target.WaitForLine(l => l.StartsWith("READY", StringComparison.Ordinal), "READY");
        return new IPEndPoint(family == "6" ? IPAddress.IPv6Loopback : IPAddress.Loopback, int.Parse(ready.Split(' ')[1], CultureInfo.InvariantCulture));
    }

    /// <summary>Waits for the client's "c N" of a tick at or after <paramref name="tick"/>, from the client's own address.</summary>
    private static void ReceiveTick(Socket peer, IPEndPoint client, int tick)
    {
        var buffer = new byte[64];
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(10);
        while (DateTime.UtcNow < deadline)
        {
            EndPoint from = new IPEndPoint(client.AddressFamily == AddressFamily.InterNetworkV6 ? IPAddress.IPv6Any : IPAddress.Any, 0);
            int n = peer.ReceiveFrom(buffer, ref from);
            Assert.Equal(client, from);
            string text = System.Text.Encoding.ASCII.GetString(buffer, 0, n);
            if (text.StartsWith("c ", StringComparison.Ordinal) && int.Parse(text[2..], CultureInfo.InvariantCulture) >= tick)
                return;
        }
        Assert.Fail($"no datagram of tick {tick} from the client");
    }

    private static string Format(EndPoint e) =>
        e is IPEndPoint ip && ip.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{ip.Address}]:{ip.Port}" : e.ToString()!;

    private static List<(string Line, int Datagrams)> Queued(string inspect) =>
        [.. inspect.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("UDP ", StringComparison.Ordinal))
            .Select(l => (l, int.Parse(QueuedCount().Match(l).Groups[1].Value, CultureInfo.InvariantCulture)))];

    [GeneratedRegex(@"(\d+) datagrams queued")]
    private static partial Regex QueuedCount();
}
