namespace Amber.Integration.Tests;

/// <summary>Pipes with bytes in flight, capacities and flags, dup'ed fds sharing one offset, and /proc files of the tree's processes.</summary>
public sealed class FileDescriptorTests
{
    [Fact]
    public void PipesInFlightAndSharedOffsetsSurviveTwoCycles()
    {
        using var dir = new TestDir("fdshare");
        using var target = TargetProcess.StartC("fdshare", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(12); // pipe A now always holds ten lines
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(3);
        }
        target.StopAndVerify();
    }

    [Fact]
    public void AnFdOnItsOwnProcFileComesBackWithTheProcess()
    {
        // /proc/self/maps is /proc/PID/maps to the kernel: gone with the process, there again once
        // the restore has made it (same PID), so not a missing file to refuse the restore for.
        using var dir = new TestDir("procself");
        using var target = TargetProcess.StartC("procself", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(3);
        }
        target.StopAndVerify();
    }

    [Fact]
    public void FdsOnProcFilesOfProcessesMadeLaterComeBackOnceTheyAre()
    {
        // The parent's fds on its child's status (with a dup sharing the offset), on its zombie's stat
        // and on its own second thread's stat; the first child's on its younger sibling's stat: each
        // names a process or thread the restore makes after the fd's holder (procothers.c).
        using var dir = new TestDir("procothers");
        using var target = TargetProcess.StartC("procothers", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(5);
        }
        target.StopAndVerify();
    }

    [Fact]
    public void ShellRedirectionSharesOneOffset()
    {
        // "> log 2>&1": fds 1 and 2 are one open file; after restore they must still be one.
        using var dir = new TestDir("redirect");
        string counter = TargetBinaries.Get("counter");
        using var target = TargetProcess.Start("/bin/sh", ["-c", $"exec {counter} {dir.Path} 4 > {dir["shared.log"]} 2>&1"], dir.Path, logName: "shared.log");
        target.WaitForTicks(3);
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldSucceed();
        target.ReapKilled();
        var inspect = AmberCli.Run("inspect", dir["img"], "--json").ShouldSucceed();
        Assert.Contains("\"sharesDescriptionWith\": 1", inspect.Stdout);
        AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        target.WaitForTicks(5);
        target.StopAndVerify();
        var ticks = File.ReadAllLines(dir["shared.log"]).Where(l => l.StartsWith("tick ")).Select(l => int.Parse(l.Split(' ')[1])).ToList();
        Assert.Equal(Enumerable.Range(1, ticks.Count), ticks);
    }
}
