using System.Globalization;

namespace Amber.Integration.Tests;

/// <summary>Interval timers, resource limits, no_new_privs, scheduling and per-thread settings; and what must be refused instead of lost.</summary>
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

    /// <summary>
    /// Memory-deny-write-execute (PR_SET_MDWE, what systemd's MemoryDenyWriteExecute= sets): after a
    /// restore the process still may not make a writable mapping executable.
    /// </summary>
    [Fact]
    public void MemoryDenyWriteExecuteHoldsAfterARestore()
    {
        using var dir = new TestDir("mdwe");
        File.WriteAllText(dir["mdwe.py"], """
            import ctypes, os, sys, time
            libc = ctypes.CDLL(None, use_errno=True)
            libc.mmap.restype = ctypes.c_void_p
            libc.mmap.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.c_long]
            libc.mprotect.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
            def fail(what):
                print('FAIL ' + what, flush=True)
                sys.exit(1)
            if libc.prctl(65, 1, 0, 0, 0) != 0: fail('PR_SET_MDWE: errno %d' % ctypes.get_errno())
            page = libc.mmap(None, 4096, 3, 0x22, -1, 0)
            print('READY', flush=True)
            n = 0
            while not os.path.exists(sys.argv[1] + '/stop'):
                n += 1
                if libc.prctl(66, 0, 0, 0, 0) != 1: fail('PR_GET_MDWE says %d' % libc.prctl(66, 0, 0, 0, 0))
                if libc.mprotect(page, 4096, 5) == 0: fail('a writable page became executable')
                print('tick %d' % n, flush=True)
                time.sleep(0.02)
            print('PASS %d' % n, flush=True)
            """);
        using var target = TargetProcess.Start("/usr/bin/python3", [dir["mdwe.py"], dir.Path], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(60));
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(3);
        }
        target.StopAndVerify();
    }

    /// <summary>
    /// A process (two of a tree: parent and child in different cgroups) comes back in the cgroup it
    /// was in, not in the restore's; a cgroup gone by then is said, and the process runs on in amber's.
    /// </summary>
    [Fact]
    public void ProcessesComeBackInTheirCgroups()
    {
        string name = $"amber-it-cgroup-{Guid.NewGuid():N}"[..28];
        var parent = Amber.Kernel.Processes.Cgroup.Create(name);
        var child = Amber.Kernel.Processes.Cgroup.Create($"{name}/child");
        try
        {
            using var dir = new TestDir("cgroup");
            File.WriteAllText(dir["two.py"], """
                import os, signal, sys, time
                kid = os.fork()
                if kid == 0:
                    while True: time.sleep(0.05)
                print('READY', flush=True)
                n = 0
                while not os.path.exists(sys.argv[1] + '/stop'):
                    n += 1
                    print('tick %d' % n, flush=True)
                    time.sleep(0.02)
                os.kill(kid, signal.SIGKILL)
                os.waitpid(kid, 0)
                print('PASS %d' % n, flush=True)
                """);
            using var target = TargetProcess.Start("/usr/bin/python3", [dir["two.py"], dir.Path], dir.Path);
            target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(60));
            int kid = target.Tree()[1];
            parent.Add(target.Pid);
            child.Add(kid);
            string Of(int pid) => File.ReadAllLines($"/proc/{pid}/cgroup").Single(l => l.StartsWith("0::", StringComparison.Ordinal)); // v2 (hybrid: beside v1's)
            Cycle.CheckpointKillRestore(target, dir["img1"]);
            Assert.Equal($"0::/{name}", Of(target.Pid));
            Assert.Equal($"0::/{name}/child", Of(kid));
            target.WaitForTicks(3);
            // The child's cgroup gone: it stays in the restore's, with a warning.
            AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img2"]).ShouldSucceed();
            target.ReapKilled([kid]);
            Directory.Delete(child.Path);
            var restored = AmberCli.Run("restore", "--images", dir["img2"], "--detach").ShouldSucceed();
            Assert.Contains($"cgroup /{name}/child no longer exists", restored.Stderr);
            Assert.Equal($"0::/{name}", Of(target.Pid));
            Assert.NotEqual($"0::/{name}/child", Of(kid));
            target.WaitForTicks(3);
            target.StopAndVerify();
        }
        finally
        {
            foreach (var cgroup in new[] { child, parent })
            {
                for (int i = 0; i < 100 && Directory.Exists(cgroup.Path); i++)
                {
                    try { Directory.Delete(cgroup.Path); }
                    catch (IOException) { Thread.Sleep(50); } // its processes still ending
                }
            }
        }
    }

    /// <summary>
    /// What each thread set about how it runs (nice value, policy, CPU mask, I/O priority, timer
    /// slack, machine-check kill policy, keep-capabilities: different in its two threads) and the
    /// process's transparent-huge-page switch and oom_score_adj come back as they were. Before, a
    /// restored process had the restore's own (a CPU mask of one CPU became every CPU).
    /// </summary>
    [Fact]
    public void EachThreadsSchedulingAndSettingsComeBack()
    {
        using var dir = new TestDir("settings");
        using var target = TargetProcess.StartC("settings", dir);
        target.WaitForTicks(3);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(5); // each tick checks every setting of both threads
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
        File.WriteAllText(dir["ofd"], new string('x', 100));
        // Two shared flocks (through two opens of one file), a POSIX lock (through an fd and its dup),
        // an OFD lock (which /proc/locks gives to no process), and a child that inherits the flocks
        // and the OFD lock and waits for the POSIX lock.
        using var target = TargetProcess.Start("/usr/bin/python3",
            ["-c", $"import fcntl,os,struct,time\na=open('{dir["flock"]}','r+')\nfcntl.flock(a, fcntl.LOCK_SH)\na2=open('{dir["flock"]}','r+')\nfcntl.flock(a2, fcntl.LOCK_SH)\nb=open('{dir["posix"]}','r+')\n" +
                   "fcntl.lockf(b, fcntl.LOCK_EX, 10, 20)\nb2=os.dup(b.fileno())\n" +
                   $"c=open('{dir["ofd"]}','r+')\nfcntl.fcntl(c, 37, struct.pack('hhqqi', fcntl.F_WRLCK, 0, 5, 7, 0))\n" +
                   $"if os.fork()==0:\n d=open('{dir["posix"]}','r+')\n fcntl.lockf(d, fcntl.LOCK_EX, 10, 20)\n os._exit(0)\n" +
                   "print('READY',flush=True)\nn=0\nwhile True:\n n+=1\n print(f'tick {n}',flush=True)\n time.sleep(0.02)"],
            dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        ulong[] inodes = [.. new[] { "flock", "posix", "ofd" }.Select(f => TestDir.Inode(dir[f]))];
        var before = WaitForLocks(inodes, 5, null);
        Assert.Contains(before, l => l.StartsWith("-> POSIX WRITE", StringComparison.Ordinal));
        Assert.Contains(before, l => l.StartsWith("OFDLCK WRITE -1", StringComparison.Ordinal));
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            // The child's wait is a system call that starts again once it runs.
            Assert.Equal(before, WaitForLocks(inodes, 5, before));
            target.WaitForTicks(3);
        }
        // Someone else cannot take them: they are really held.
        var contender = ExternalProgram.Run("/usr/bin/python3", "-c",
            $"import fcntl,struct\nf=open('{dir["posix"]}','r+')\ng=open('{dir["ofd"]}','r+')\n" +
            "def held(f, start, n):\n try:\n  fcntl.fcntl(f, 37, struct.pack('hhqqi', fcntl.F_WRLCK, 0, start, n, 0))\n  return 'got it'\n except OSError:\n  return 'blocked'\n" +
            "print(held(f, 22, 5), held(g, 8, 1))");
        Assert.Equal("blocked blocked", contender.Stdout.Trim());
    }

    /// <summary>
    /// The locks /proc/locks shows on the files <paramref name="inodes"/> (waits for them marked "->"):
    /// kind, type, pid and range. Waits until there are <paramref name="count"/>, and as many as
    /// <paramref name="expected"/> equal, or 10 s.
    /// </summary>
    private static List<string> WaitForLocks(ulong[] inodes, int count, List<string>? expected)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (true)
        {
            List<string> locks = [.. File.ReadLines("/proc/locks").Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..])
                .Where(f => inodes.Contains(ulong.Parse(f[^3].Split(':')[2], CultureInfo.InvariantCulture)))
                .Select(f => string.Join(' ', f[0] == "->" ? ["->", f[1], f[3], f[4], f[6], f[7]] : new[] { f[0], f[2], f[3], f[5], f[6] })).Order()];
            if ((locks.Count == count && (expected is null || locks.SequenceEqual(expected))) || DateTime.UtcNow > deadline)
                return locks;
            Thread.Sleep(20);
        }
    }

    private static int Alarms(TargetProcess target) =>
        target.Lines().Where(l => l.StartsWith("tick ", StringComparison.Ordinal))
            .Select(l => int.Parse(l[(l.IndexOf("alarms=", StringComparison.Ordinal) + 7)..], CultureInfo.InvariantCulture)).LastOrDefault();
}
