using System.Net;
using System.Net.Sockets;
using System.Text;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>eventfd, timerfd, signalfd, epoll and listening sockets: a server's main loop, restored.</summary>
public sealed class EventLoopTests
{
    /// <summary>
    /// An edge-triggered watch reports each event once: not again after a restore (its file still
    /// ready, the event collected before the checkpoint), and still once if it was not collected yet;
    /// a level-triggered and a one-shot watch beside it as they were. Half the checkpoints fall with
    /// an event waiting (odd ticks), half with it collected; one leaves the program running.
    /// </summary>
    [Fact]
    public void EdgeTriggeredWatchesReportEachEventOnceAcrossRestores()
    {
        using var dir = new TestDir("epollet");
        using var target = TargetProcess.StartC("epollet", dir);
        target.WaitForTicks(3);
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["running"], "--leave-running").ShouldSucceed();
        target.WaitForTicks(3);
        for (int cycle = 1; cycle <= 4; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(3); // each tick checks what two epoll_waits report
        }
        target.StopAndVerify();
    }

    [Fact]
    public void EventLoopServesAgainAfterTwoCycles()
    {
        using var dir = new TestDir("events");
        int tcp = FreePort(SocketType.Stream, ProtocolType.Tcp), udp = FreePort(SocketType.Dgram, ProtocolType.Udp);
        using var target = TargetProcess.StartC("events", dir, tcp.ToString(), udp.ToString());
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(4); // two eventfd tokens taken at tick 3
        Spawner.Kill(target.Pid, 10);
        target.WaitForLine(l => l.Contains("usr1=1"), "'usr1=1'");
        int served = 0;
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            int timerBefore = Field(target, "timer");
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            Assert.Equal($"hello {++served}", ReadLine(new IPEndPoint(IPAddress.Loopback, tcp), AddressFamily.InterNetwork));
            Assert.Equal($"hello {++served}", ReadLine(new UnixDomainSocketEndPoint(dir["events.sock"]), AddressFamily.Unix));
            using (var client = new UdpClient(AddressFamily.InterNetwork))
            {
                client.Client.ReceiveTimeout = 5000;
                client.Send("ping"u8.ToArray(), new IPEndPoint(IPAddress.Loopback, udp));
                IPEndPoint? from = null;
                Assert.Equal("pong", Encoding.ASCII.GetString(client.Receive(ref from)));
            }
            Spawner.Kill(target.Pid, 10);
            target.WaitForLine(l => l.Contains($"usr1={1 + cycle}"), $"'usr1={1 + cycle}'");
            target.WaitForTicks(5);
            Assert.True(Field(target, "timer") > timerBefore, "the timerfd did not go on expiring");
        }
        target.StopAndVerify(); // the eventfd still held exactly the three tokens left
    }

    private static string ReadLine(EndPoint endpoint, AddressFamily family)
    {
        using var socket = new Socket(family, SocketType.Stream, family == AddressFamily.Unix ? ProtocolType.Unspecified : ProtocolType.Tcp);
        socket.ReceiveTimeout = 5000;
        socket.Connect(endpoint);
        var buffer = new byte[64];
        int total = 0, n;
        while ((n = socket.Receive(buffer, total, buffer.Length - total, SocketFlags.None)) > 0)
            total += n;
        return Encoding.ASCII.GetString(buffer, 0, total).TrimEnd('\n');
    }

    private static int Field(TargetProcess target, string name)
    {
        var line = target.Lines().Last(l => l.StartsWith("tick ", StringComparison.Ordinal));
        var token = line.Split(' ').Single(t => t.StartsWith(name + "=", StringComparison.Ordinal));
        return int.Parse(token[(name.Length + 1)..]);
    }

    private static int FreePort(SocketType type, ProtocolType protocol)
    {
        using var socket = new Socket(AddressFamily.InterNetwork, type, protocol);
        socket.Bind(new IPEndPoint(IPAddress.Loopback, 0));
        return ((IPEndPoint)socket.LocalEndPoint!).Port;
    }
}
