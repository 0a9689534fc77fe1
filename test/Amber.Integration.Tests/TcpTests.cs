namespace Amber.Integration.Tests;

/// <summary>
/// Established TCP connections (TCP_REPAIR): tcpstream's two ends stream self-checking bytes both ways
/// as fast as they can, with both ends' send and receive queues mostly full; every byte is checked by
/// its offset, and a reset, EPIPE or early end of file is a FAIL.
/// </summary>
public sealed class TcpTests
{
    [Theory]
    [InlineData("")]
    [InlineData("--v6")]
    [InlineData("--mapped")]
    public void AConnectionBetweenTwoProcessesOfATreeSurvivesTwoCycles(string family)
    {
        using var dir = new TestDir("tcpstream");
        string[] args = family.Length == 0 ? ["both", dir.Path] : ["both", dir.Path, family];
        using var target = TargetProcess.Start(TargetBinaries.Get("tcpstream"), args, dir.Path, logName: "server.log");
        target.WaitForLine(l => l.StartsWith("CONN", StringComparison.Ordinal), "CONN");
        target.WaitForTicks(10);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            long restored = Received(target.Lines());
            target.WaitForLine(l => ReceivedOf(l) > restored + (1 << 20), "a MiB more received after the restore", TimeSpan.FromSeconds(15));
        }
        target.StopAndVerify();
        var client = File.ReadAllLines(dir["client.log"]);
        Assert.True(client.Length > 0 && client[^1].StartsWith("PASS", StringComparison.Ordinal), $"the client did not end with PASS: {string.Join(" | ", client.TakeLast(5))}");
    }

    [Fact]
    public void ACheckpointThatLetsTheProgramRunOnLeavesItsConnectionWorkingAndRestoresLater()
    {
        using var dir = new TestDir("tcpleave");
        using var target = TargetProcess.Start(TargetBinaries.Get("tcpstream"), ["both", dir.Path], dir.Path, logName: "server.log");
        target.WaitForLine(l => l.StartsWith("CONN", StringComparison.Ordinal), "CONN");
        target.WaitForTicks(10);
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"], "--leave-running").ShouldSucceed();
        // Out of repair mode and streaming on: nothing was sent while it was read, nothing lost since.
        long before = Received(target.Lines());
        target.WaitForLine(l => ReceivedOf(l) > before + (1 << 20), "a MiB more received after the checkpoint", TimeSpan.FromSeconds(15));
        var inspect = AmberCli.Run("inspect", dir["img"]).ShouldSucceed();
        Assert.Contains("TCP 127.0.0.1:", inspect.Stdout);
        Assert.Contains("Established", inspect.Stdout);
        // The moment saved comes back, the pair in step with each other.
        var tree = target.Tree();
        foreach (int pid in tree.AsEnumerable().Reverse())
            Amber.Kernel.Processes.Spawner.Kill(pid, 9);
        target.ReapKilled(tree.Skip(1).ToList());
        AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        target.Restored();
        target.WaitForTicks(10);
        target.StopAndVerify();
        var client = File.ReadAllLines(dir["client.log"]);
        Assert.True(client.Length > 0 && client[^1].StartsWith("PASS", StringComparison.Ordinal), $"the client did not end with PASS: {string.Join(" | ", client.TakeLast(5))}");
    }

    [Fact]
    public void AConnectionToAPeerOutsideIsRefusedNamingIt()
    {
        using var dir = new TestDir("tcpoutside");
        using var listener = new System.Net.Sockets.TcpListener(System.Net.IPAddress.Loopback, 0);
        listener.Start();
        int port = ((System.Net.IPEndPoint)listener.LocalEndpoint).Port;
        using var target = TargetProcess.Start("/usr/bin/python3",
            ["-c", $"import socket,time\nc=socket.create_connection(('127.0.0.1',{port}))\nprint('READY',flush=True)\nwhile True: time.sleep(0.05); print('tick', flush=True)"], dir.Path);
        using var accepted = listener.AcceptSocket();
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        var run = AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldFail($"process {target.Pid}: fd 3 (socket:");
        Assert.Contains($"TCP to 127.0.0.1:{port}", run.Stderr);
        Assert.Contains("whose peer is outside the checkpoint", run.Stderr);
        Assert.True(target.IsRunning);
        Assert.False(target.IsTraced);
        Assert.False(Directory.Exists(dir["img"]));
        // The connection works on: nothing was left in repair mode.
        accepted.Send("ping\n"u8);
        int count = target.Lines().Count;
        target.WaitForLine(_ => target.Lines().Count > count + 2, "more ticks");
    }

    /// <summary>The bytes received as of the last "tick N sent S received R" line.</summary>
    private static long Received(List<string> lines) => lines.Select(ReceivedOf).DefaultIfEmpty(0).Max();

    private static long ReceivedOf(string line) =>
        line.StartsWith("tick ", StringComparison.Ordinal) && line.Split(' ') is { Length: >= 6 } p
            ? long.Parse(p[5], System.Globalization.CultureInfo.InvariantCulture) : 0;
}
