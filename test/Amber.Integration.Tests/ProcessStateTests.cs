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
    public void SeccompFilterComesBack()
    {
        using var dir = new TestDir("seccomp");
        using var target = TargetProcess.StartC("seccomp", dir);
        target.WaitForTicks(3);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(3); // each tick checks the filter acts
        }
        target.StopAndVerify();
    }

    [Fact]
    public void PosixTimersKeepTheirIdsAndGoOnFiring()
    {
        using var dir = new TestDir("ptimer");
        using var target = TargetProcess.StartC("limits", dir, "posixtimer");
        target.WaitForTicks(3);
        string Timers() => string.Join("|", File.ReadAllLines($"/proc/{target.Pid}/timers").Where(l => !l.StartsWith("notify")));
        var before = Timers();
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            int alarmsBefore = Alarms(target);
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            Assert.Equal(before, Timers());
            target.WaitForTicks(10);
            Assert.True(Alarms(target) > alarmsBefore, "the POSIX timer did not go on firing after the restore");
        }
        target.StopAndVerify();
    }

    [Fact]
    public void FileLocksAreTakenAgain()
    {
        using var dir = new TestDir("locks");
        File.WriteAllText(dir["flock"], "");
        File.WriteAllText(dir["posix"], new string('x', 100));
        using var target = TargetProcess.Start("/usr/bin/python3",
            ["-c", $"import fcntl,time\na=open('{dir["flock"]}','r+')\nfcntl.flock(a, fcntl.LOCK_SH)\nb=open('{dir["posix"]}','r+')\n" +
                   "fcntl.lockf(b, fcntl.LOCK_EX, 10, 20)\nprint('READY',flush=True)\nn=0\nwhile True:\n n+=1\n print(f'tick {n}',flush=True)\n time.sleep(0.02)"],
            dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        var before = Locks(target.Pid);
        Assert.Equal(2, before.Count);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            Assert.Equal(before, Locks(target.Pid));
            target.WaitForTicks(3);
        }
        // Someone else cannot take them: they are really held.
        var contender = ExternalProgram.Run("/usr/bin/python3", "-c",
            $"import fcntl\nf=open('{dir["posix"]}','r+')\ntry:\n fcntl.lockf(f, fcntl.LOCK_EX|fcntl.LOCK_NB, 5, 22)\n print('got it')\nexcept OSError:\n print('blocked')");
        Assert.Equal("blocked", contender.Stdout.Trim());
    }

    /// <summary>The locks /proc/locks shows for a process: kind, type, inode and range.</summary>
    private static List<string> Locks(int pid) =>
        [.. File.ReadLines("/proc/locks").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Where(f => f[4] == pid.ToString()).Select(f => string.Join(' ', f[1], f[3], f[5], f[6], f[7])).Order()];

    private static int Alarms(TargetProcess target) =>
        target.Lines().Where(l => l.StartsWith("tick ", StringComparison.Ordinal))
            .Select(l => int.Parse(l[(l.IndexOf("alarms=", StringComparison.Ordinal) + 7)..], CultureInfo.InvariantCulture)).LastOrDefault();
}
