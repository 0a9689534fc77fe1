using System.Globalization;

namespace Amber.Integration.Tests;

/// <summary>Interval timers, resource limits, no_new_privs; and what must be refused instead of lost.</summary>
public sealed class ProcessStateTests
{
    [Fact]
    public void TimersLimitsAndNoNewPrivsSurviveTwoCycles()
    {
        using var dir = new TestDir("limits");
        using var target = TargetProcess.StartC("limits", dir);
        target.WaitForTicks(3);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            int alarmsBefore = Alarms(target);
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(10);
            Assert.True(Alarms(target) > alarmsBefore, "the interval timer did not go on firing after the restore");
        }
        target.StopAndVerify();
    }

    [Fact]
    public void PosixTimerIsRefused()
    {
        using var dir = new TestDir("ptimer");
        using var target = TargetProcess.StartC("limits", dir, "posixtimer");
        target.WaitForTicks(2);
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldFail("POSIX timer");
        Assert.True(target.IsRunning);
        Assert.False(target.IsTraced);
        target.StopAndVerify();
    }

    [Fact]
    public void FileLockIsRefused()
    {
        using var dir = new TestDir("flock");
        File.WriteAllText(dir["lock"], "");
        using var target = TargetProcess.Start("/usr/bin/python3",
            ["-c", $"import fcntl,time\nf=open('{dir["lock"]}','r+')\nfcntl.lockf(f, fcntl.LOCK_EX)\nprint('READY',flush=True)\ntime.sleep(60)"], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldFail("a file lock");
        Assert.True(target.IsRunning);
        Assert.False(target.IsTraced);
    }

    private static int Alarms(TargetProcess target) =>
        target.Lines().Where(l => l.StartsWith("tick ", StringComparison.Ordinal))
            .Select(l => int.Parse(l[(l.IndexOf("alarms=", StringComparison.Ordinal) + 7)..], CultureInfo.InvariantCulture)).LastOrDefault();
}
