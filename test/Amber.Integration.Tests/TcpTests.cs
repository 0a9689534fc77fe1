using Amber.Kernel.Proc;

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

    /// <summary>
    /// One end checkpointed, the other a program that is not: while the saved end is gone, the network
    /// lock drops the peer's retransmissions (no reset); after the restore the stream goes on, every
    /// byte checked by both ends.
    /// </summary>
    [Theory]
    [InlineData("server", "")]
    [InlineData("server", "--v6")]
    [InlineData("client", "--mapped")]
    public void AConnectionWhosePeerIsOutsideComesBackAndThePeerSeesOnlyAPause(string saved, string family)
    {
        using var dir = new TestDir("tcppeer");
        using var server = StartEnd("server", dir, family);
        server.WaitForLine(l => l == "READY", "READY");
        using var client = StartEnd("client", dir, family);
        var (target, peer) = saved == "server" ? (server, client) : (client, server);
        target.WaitForLine(l => l.StartsWith("CONN", StringComparison.Ordinal), "CONN");
        target.WaitForTicks(10);
        int port = int.Parse(File.ReadAllText(dir["port"]).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            string images = dir[$"img{cycle}"];
            AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", images).ShouldSucceed();
            target.ReapKilled();
            // The peer's packets are dropped until the restore: it waits, its retransmissions unanswered.
            var held = Locks(port);
            Assert.True(held.Count == 1 && held[0].Checkpoint == images, $"cycle {cycle}: the connection is not held by one lock parked for {images}: {Describe(held)}");
            Thread.Sleep(1500);
            Assert.True(peer.IsRunning, $"cycle {cycle}: the peer ended while its connection was locked: {string.Join(" | ", peer.Lines().TakeLast(3))}");
            long before = Received(peer.Lines());
            AmberCli.Run("restore", "--images", images, "--detach").ShouldSucceed();
            target.Restored();
            Assert.True(Locks(port).Count == 0, $"cycle {cycle}: the lock outlived the restore: {Describe(Locks(port))}");
            peer.WaitForLine(l => ReceivedOf(l) > before + (1 << 20), "a MiB more received by the peer after the restore", TimeSpan.FromSeconds(20));
        }
        File.WriteAllText(dir["stop"], "");
        target.FinishAndVerify();
        peer.FinishAndVerify();
    }

    /// <summary>
    /// A checkpoint that fails after the connections were locked and read leaves the program and its
    /// connection working, and no lock.
    /// </summary>
    [Fact]
    public void AFailedCheckpointLeavesTheConnectionWorkingAndNoLock()
    {
        using var dir = new TestDir("tcpfail");
        using var server = StartEnd("server", dir, "");
        server.WaitForLine(l => l == "READY", "READY");
        using var client = StartEnd("client", dir, "");
        server.WaitForTicks(10);
        int port = int.Parse(File.ReadAllText(dir["port"]).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        AmberCli.Run(["checkpoint", server.Pid.ToString(), "--images", dir["img"]], env: new Dictionary<string, string> { ["AMBER_FAULT"] = "BeforeCommit" })
            .ShouldFail("injected fault at BeforeCommit");
        Assert.True(server.IsRunning && !server.IsTraced);
        Assert.Empty(Locks(port));
        long before = Received(client.Lines());
        client.WaitForLine(l => ReceivedOf(l) > before + (1 << 20), "a MiB more received after the failed checkpoint", TimeSpan.FromSeconds(20));
        File.WriteAllText(dir["stop"], "");
        server.FinishAndVerify();
        client.FinishAndVerify();
    }

    /// <summary>
    /// amber killed (SIGKILL) while the lock is held. A checkpoint's worker, which the kill does not
    /// reach, finishes on its own: killed once the connections are read, it resumes the program and
    /// lifts the lock; killed after it was told to end the program, it ends it and leaves the lock to
    /// the checkpoint, whose restore lifts it. A restore killed after every process runs leaves a lock
    /// whose holder is gone: the program pauses until the next amber command (amber check here) finds
    /// the lock stale and removes it. Every byte of the stream is checked throughout.
    /// </summary>
    [Theory]
    [InlineData("checkpoint", "AfterNetworkLock")]
    [InlineData("checkpoint", "BeforeEnd")]
    [InlineData("restore", "RestoreBeforeUnlock")]
    public void AmberKilledWhileTheLockIsHeldNeverLeavesTheConnectionLocked(string verb, string point)
    {
        using var dir = new TestDir("tcpkill");
        using var server = StartEnd("server", dir, "");
        server.WaitForLine(l => l == "READY", "READY");
        using var client = StartEnd("client", dir, "");
        server.WaitForTicks(10);
        int port = int.Parse(File.ReadAllText(dir["port"]).Trim(), System.Globalization.CultureInfo.InvariantCulture);
        var fault = new Dictionary<string, string> { ["AMBER_FAULT"] = $"{point}:sleep=3000" };
        if (verb == "restore")
        {
            AmberCli.Run("checkpoint", server.Pid.ToString(), "--images", dir["img"]).ShouldSucceed();
            server.ReapKilled();
        }
        string images = verb == "checkpoint" ? dir["img2"] : dir["img"];
        var amber = verb == "checkpoint"
            ? AmberCli.Start(["checkpoint", server.Pid.ToString(), "--images", images], env: fault)
            : AmberCli.Start(["restore", "--images", images, "--detach"], env: fault);
        // At the fault point: the lock is there (parked already, before the end).
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (Locks(port).Count == 0 || (point == "BeforeEnd" && Locks(port)[0].Checkpoint is null)
            || (point == "RestoreBeforeUnlock" && !(server.IsRunning && !server.IsTraced)))
        {
            if (DateTime.UtcNow > deadline)
                Assert.Fail($"amber did not reach {point}: {Describe(Locks(port))}; amber: {amber.Wait().Stderr}");
            Thread.Sleep(10);
        }
        Thread.Sleep(300);
        Amber.Kernel.Processes.Spawner.Kill(amber.Pid, 9);
        amber.Wait();
        WaitUntil(() => !ProcFs.ListProcesses().Any(p => CommandLine(p).Contains(images, StringComparison.Ordinal)), "amber's worker finishes", TimeSpan.FromSeconds(60));
        switch (point)
        {
            case "AfterNetworkLock":
                Assert.True(server.IsRunning && !server.IsTraced, "the server was not resumed");
                Assert.Empty(Locks(port));
                break;
            case "BeforeEnd":
                server.ReapKilled();
                Assert.True(Locks(port) is [{ Checkpoint: not null }], $"the ended server's connection is not held for its checkpoint: {Describe(Locks(port))}");
                AmberCli.Run("restore", "--images", images, "--detach").ShouldSucceed();
                server.Restored();
                Assert.Empty(Locks(port));
                break;
            default:
                server.Restored();
                Assert.NotEmpty(Locks(port)); // its holder gone, nothing lifted it yet
                var check = AmberCli.Run("check");
                Assert.Contains("stale network lock", check.Stderr);
                Assert.Empty(Locks(port));
                break;
        }
        long before = Received(client.Lines());
        client.WaitForLine(l => ReceivedOf(l) > before + (1 << 20), "a MiB more received by the client", TimeSpan.FromSeconds(30));
        File.WriteAllText(dir["stop"], "");
        server.FinishAndVerify();
        client.FinishAndVerify();
    }

    private static string CommandLine(int pid)
    {
        try
        {
            return File.ReadAllText($"/proc/{pid}/cmdline").Replace('\0', ' ');
        }
        catch (IOException)
        {
            return "";
        }
    }

    private static TargetProcess StartEnd(string role, TestDir dir, string family) =>
        TargetProcess.Start(TargetBinaries.Get("tcpstream"), family.Length == 0 ? [role, dir.Path] : [role, dir.Path, family], dir.Path, logName: $"{role}.log");

    /// <summary>The network locks holding a connection to or from <paramref name="port"/>.</summary>
    private static List<Amber.Checkpoint.Resources.Sockets.NetworkLock> Locks(int port) =>
        [.. Amber.Checkpoint.Resources.Sockets.NetworkLock.All().Where(l => l.Connections.Any(c => c.Local.Port == port || c.Peer.Port == port))];

    private static string Describe(List<Amber.Checkpoint.Resources.Sockets.NetworkLock> locks) =>
        locks.Count == 0 ? "none" : string.Join("; ", locks.Select(l => $"{l.Id} held by {l.HeldBy} for {l.Checkpoint}"));

    private static void WaitUntil(Func<bool> condition, string what, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting: {what}");
            Thread.Sleep(10);
        }
    }

    /// <summary>The bytes received as of the last "tick N sent S received R" line.</summary>
    private static long Received(List<string> lines) => lines.Select(ReceivedOf).DefaultIfEmpty(0).Max();

    private static long ReceivedOf(string line) =>
        line.StartsWith("tick ", StringComparison.Ordinal) && line.Split(' ') is { Length: >= 6 } p
            ? long.Parse(p[5], System.Globalization.CultureInfo.InvariantCulture) : 0;
}
