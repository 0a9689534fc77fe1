using System.Diagnostics;

namespace Amber.Integration.Tests;

/// <summary>
/// A .NET program that uses the client library (samples/Amber.Client.Sample): told before each
/// checkpoint, within the deadline, then after it, and after a restore, in that order; a program that
/// takes longer than the deadline does not hold the checkpoint up.
/// </summary>
public sealed class ClientLibraryTests
{
    private static string Sample => Path.Combine(Repo.Root, "samples", "Amber.Client.Sample", "bin", "Release", "net10.0", "Amber.Client.Sample.dll");

    [Fact]
    public void CallbacksArriveInOrderAndTheRestoredProgramIsTold()
    {
        using var home = new GroupHome("client");
        home.Run("cl", ["--deadline", "2s"], Repo.Dotnet, Sample);
        var log = new GroupMember(0, home.Home.GroupLog("cl"));
        log.WaitForLine("registered in group cl");
        log.WaitForTicks(3);

        home.Amber("checkpoint", "--group", "cl").ShouldSucceed();
        GroupHome.WaitUntil(() => Events(log).Contains("after-checkpoint ckpt-000001"), "after-checkpoint");
        home.Amber("checkpoint", "--group", "cl", "--stop").ShouldSucceed();
        home.Amber("restore", "--group", "cl").ShouldSucceed();
        GroupHome.WaitUntil(() => Events(log).Contains("after-restore ckpt-000002"), "after-restore in the restored program");
        log.WaitForTicks(5); // its running sum checks out every tick

        Assert.Equal(
            ["registered in group cl", "before-checkpoint ckpt-000001", "prepared ckpt-000001", "after-checkpoint ckpt-000001",
             "before-checkpoint ckpt-000002", "prepared ckpt-000002", "after-restore ckpt-000002"],
            Events(log).Select(e => e.Split(" remaining-ms=")[0]));
        // The deadline it was given is the group's: 2 s.
        var remaining = Events(log).Where(e => e.StartsWith("before-checkpoint", StringComparison.Ordinal))
            .Select(e => int.Parse(e.Split("remaining-ms=")[1], System.Globalization.CultureInfo.InvariantCulture));
        Assert.All(remaining, ms => Assert.InRange(ms, 1500, 2000));
    }

    [Fact]
    public void AProgramSlowerThanTheDeadlineDoesNotHoldTheCheckpointUp()
    {
        using var home = new GroupHome("client-slow");
        home.Run("slow", ["--deadline", "1s"], Repo.Dotnet, Sample, "--slow", "4000");
        var log = new GroupMember(0, home.Home.GroupLog("slow"));
        log.WaitForLine("registered in group slow");
        var clock = Stopwatch.StartNew();
        var run = home.Amber("checkpoint", "--group", "slow").ShouldSucceed();
        clock.Stop();
        Assert.InRange(clock.Elapsed.TotalSeconds, 0.9, 3.5);
        Assert.Contains("did not answer within 1 s; checkpointed all the same", run.Stderr);
        Assert.DoesNotContain("prepared ckpt-000001", Events(log)); // still preparing when the checkpoint was taken
        GroupHome.WaitUntil(() => Events(log).Contains("prepared ckpt-000001"), "the slow program to finish preparing", TimeSpan.FromSeconds(10));
        log.WaitForTicks(3);
    }

    [Fact]
    public void ACallbackThatThrowsNeitherEndsTheProgramNorStopsTheCheckpoint()
    {
        using var home = new GroupHome("client-throw");
        int pid = home.Run("th", [], Repo.Dotnet, Sample, "--throw");
        var log = new GroupMember(pid, home.Home.GroupLog("th"));
        log.WaitForLine("registered in group th");
        string DaemonLog() => File.ReadAllText(home.Home.DaemonLog);

        // BeforeCheckpoint throws: the checkpoint is taken all the same, and its report says why.
        var run = home.Amber("checkpoint", "--group", "th").ShouldSucceed();
        Assert.Contains($"amber: warning: process {pid} ('sample'): its BeforeCheckpoint threw InvalidOperationException: BeforeCheckpoint of ckpt-000001 failed on purpose; checkpointed all the same", run.Stderr);
        Assert.Contains($"group th: process {pid} ('sample'): its BeforeCheckpoint for ckpt-000001 threw InvalidOperationException: BeforeCheckpoint of ckpt-000001 failed on purpose; the checkpoint goes on", DaemonLog());
        // AfterCheckpoint throws: the program runs on, the coordinator's log names the exception.
        GroupHome.WaitUntil(() => DaemonLog().Contains($"process {pid} ('sample'): its AfterCheckpoint for ckpt-000001 threw InvalidOperationException: AfterCheckpoint of ckpt-000001 failed on purpose", StringComparison.Ordinal),
            "the failed AfterCheckpoint in the coordinator's log");
        log.WaitForTicks(5);
        Assert.True(log.IsRunning);

        // So does the restored program when its AfterRestore throws.
        home.Amber("checkpoint", "--group", "th", "--stop").ShouldSucceed();
        home.Amber("restore", "--group", "th").ShouldSucceed();
        GroupHome.WaitUntil(() => DaemonLog().Contains($"its AfterRestore for ckpt-000002 threw InvalidOperationException: AfterRestore of ckpt-000002 failed on purpose", StringComparison.Ordinal),
            "the failed AfterRestore in the coordinator's log");
        log.WaitForTicks(5);
        Assert.True(log.IsRunning);
        Assert.DoesNotContain(log.Lines(), l => l.StartsWith("FAIL", StringComparison.Ordinal) || l.Contains("Unhandled", StringComparison.Ordinal));
    }

    /// <summary>
    /// Resources (CRaC's idea): a listener and a log file closed before each checkpoint, so the image
    /// holds neither, and opened again after it and after the restore: the same port answers with the
    /// count it had, and the log, rotated while the group was down, goes on in a new file.
    /// </summary>
    [Fact]
    public void AListenerAndALogClosedForEachCheckpointAreOpenAgainAfterItAndAfterTheRestore()
    {
        using var home = new GroupHome("client-resources");
        string logPath = home.Dir["served.log"];
        home.Run("rs", [], Repo.Dotnet, Sample, "--serve", logPath);
        var output = new GroupMember(0, home.Home.GroupLog("rs"));
        output.WaitForLine("registered in group rs");
        GroupHome.WaitUntil(() => output.Lines().Any(l => l.StartsWith("listening ", StringComparison.Ordinal)), "listening PORT");
        int port = int.Parse(output.Lines().First(l => l.StartsWith("listening ", StringComparison.Ordinal))["listening ".Length..], System.Globalization.CultureInfo.InvariantCulture);
        Assert.Equal("hits 1", Ask(port));

        // Taken while it runs on: closed for the checkpoint, listening again after it.
        home.Amber("checkpoint", "--group", "rs").ShouldSucceed();
        GroupHome.WaitUntil(() => Events(output).Contains("after-checkpoint ckpt-000001"), "after-checkpoint");
        Assert.Equal("hits 2", Ask(port));

        // Neither the listener nor the log is in the image.
        home.Amber("checkpoint", "--group", "rs", "--stop").ShouldSucceed();
        var image = System.Text.Json.JsonDocument.Parse(AmberCli.Run("inspect", "--json", Path.Combine(home.Home.DefaultStore("rs"), "ckpt-000002")).ShouldSucceed().Stdout);
        var fds = image.RootElement.GetProperty("processes").EnumerateArray().SelectMany(p => p.GetProperty("fds").EnumerateArray()).ToList();
        Assert.NotEmpty(fds);
        // (The runtime's own diagnostics listener is a unix socket: it stays.)
        Assert.DoesNotContain(fds, fd => fd.TryGetProperty("socket", out var socket) && socket.GetProperty("family").GetInt32() is 2 or 10 && socket.GetProperty("listening").GetBoolean());
        Assert.DoesNotContain(fds, fd => fd.GetProperty("path").GetString() == logPath);

        // The log is rotated while the group is down; restored, it answers on its port with its count and logs to the new file.
        File.Move(logPath, logPath + ".1");
        home.Amber("restore", "--group", "rs").ShouldSucceed();
        GroupHome.WaitUntil(() => Events(output).Contains("after-restore ckpt-000002"), "after-restore");
        Assert.Equal("hits 3", Ask(port));
        Assert.Equal(["hit 1", "hit 2"], File.ReadAllLines(logPath + ".1"));
        Assert.Equal(["hit 3"], File.ReadAllLines(logPath));
        output.WaitForTicks(3); // its running sum checks out every tick
    }

    /// <summary>One line from 127.0.0.1:PORT.</summary>
    private static string Ask(int port)
    {
        using var client = new System.Net.Sockets.TcpClient();
        client.ReceiveTimeout = 10_000;
        client.Connect(System.Net.IPAddress.Loopback, port);
        using var reader = new StreamReader(client.GetStream());
        return reader.ReadLine() ?? "";
    }

    private static List<string> Events(GroupMember log) =>
        [.. log.Lines().Where(l => !l.StartsWith("tick ", StringComparison.Ordinal) && !l.StartsWith("listening ", StringComparison.Ordinal))];
}
