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

    private static List<string> Events(GroupMember log) =>
        [.. log.Lines().Where(l => !l.StartsWith("tick ", StringComparison.Ordinal))];
}
