using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>
/// What a checkpointing tool must never do: harm the program it saves, leave a half-running restore,
/// or answer bad input with a stack trace. Every failure is one line and exit code 1.
/// </summary>
public sealed class FailureTests
{
    [Fact]
    public void MissingPidIsAClearError()
    {
        using var dir = new TestDir("nopid");
        AmberCli.Run("checkpoint", "4194000", "--images", dir["img"]).ShouldFail("process 4194000 does not exist");
        Assert.False(Directory.Exists(dir["img"]));
    }

    [Fact]
    public void UsageErrorsExitWith2()
    {
        Assert.Equal(2, AmberCli.Run("checkpoint").ExitCode);
        Assert.Equal(2, AmberCli.Run("restore").ExitCode);
        Assert.Equal(2, AmberCli.Run("no-such-command").ExitCode);
    }

    [Fact]
    public void TreeWithAnUnsupportedChildIsRefusedAndLeftRunning()
    {
        using var dir = new TestDir("children");
        using var target = TargetProcess.Start("/bin/sh",
            ["-c", "/usr/bin/python3 -c 'import socket,time\ns=socket.socket(socket.AF_PACKET,socket.SOCK_DGRAM)\nprint(\"READY\",flush=True)\ntime.sleep(100)' & wait"], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        int child = Amber.Kernel.Proc.ProcFs.ListChildren(target.Pid).Single();
        var run = AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldFail($"process {child}: fd 3 (socket:");
        Assert.Contains("a socket of a family or type Amber does not handle", run.Stderr);
        Assert.True(target.IsRunning);
        Assert.False(target.IsTraced);
        Assert.Equal('S', Amber.Kernel.Proc.ProcFs.ReadStat(child).State);
        Assert.Equal("0", File.ReadAllLines($"/proc/{child}/status").Single(l => l.StartsWith("TracerPid:")).Split('\t')[1]);
        Assert.False(Directory.Exists(dir["img"]));
        Spawner.Kill(child, 9);
    }

    /// <summary>
    /// Inotify events the program never reads: the checkpoint is tried again for half a second (a
    /// program that reads its events would have read them), then refused, the program untouched.
    /// </summary>
    [Fact]
    public void InotifyEventsNeverReadAreRefusedAfterAWhileAndTheProgramRunsOn()
    {
        using var dir = new TestDir("inotifyfull");
        Directory.CreateDirectory(dir["watched"]);
        File.WriteAllText(dir["never.py"], """
            import ctypes, sys, time
            libc = ctypes.CDLL(None)
            fd = libc.inotify_init()
            assert libc.inotify_add_watch(fd, sys.argv[1].encode(), 0x100) > 0  # IN_CREATE
            open(sys.argv[1] + "/made", "w").close()
            print("READY", flush=True)
            while True:
                time.sleep(0.05)
                print("tick", flush=True)
            """);
        using var target = TargetProcess.Start("/usr/bin/python3", [dir["never.py"], dir["watched"]], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        var clock = System.Diagnostics.Stopwatch.StartNew();
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldFail("events not read yet");
        Assert.True(clock.Elapsed >= TimeSpan.FromMilliseconds(450), $"refused after {clock.ElapsedMilliseconds} ms: it was not tried again");
        Assert.True(target.IsRunning && !target.IsTraced);
        Assert.False(Directory.Exists(dir["img"]));
        int ticks = target.Lines().Count(l => l == "tick");
        target.WaitForLine(_ => target.Lines().Count(l => l == "tick") > ticks + 2, "ticks after the refusal");
    }

    [Fact]
    public void UnsupportedFdIsRefusedNamingIt()
    {
        using var dir = new TestDir("socket");
        using var target = TargetProcess.Start("/usr/bin/python3",
            ["-c", "import socket,time\ns=socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, 0)\nprint('READY',flush=True)\nwhile True: time.sleep(0.05); print('tick', flush=True)"], dir.Path);
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(30));
        // A packet socket (protocol 0: it captures nothing): a family Amber does not handle.
        var run = AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldFail($"process {target.Pid}: fd 3 (socket:");
        Assert.Contains("a socket of a family or type Amber does not handle", run.Stderr);
        Assert.True(target.IsRunning);
        Assert.False(target.IsTraced);
        int count = target.Lines().Count;
        target.WaitForLine(_ => target.Lines().Count > count + 2, "more ticks");
    }

    [Fact]
    public void SeccompStrictModeIsRefusedAndLeftRunning()
    {
        using var dir = new TestDir("strict");
        using var target = TargetProcess.StartC("strict", dir);
        target.WaitForLine(l => l == "READY", "READY");
        var run = AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldFail($"process {target.Pid}");
        Assert.Contains("seccomp strict mode", run.Stderr);
        Assert.True(target.IsRunning);
        Assert.False(target.IsTraced);
        Assert.False(Directory.Exists(dir["img"]));
    }

    [Theory]
    [InlineData("AfterFreeze")]
    [InlineData("AfterThreadState")]
    [InlineData("DuringPages")]
    [InlineData("BeforeCommit")]
    public void FailedCheckpointLeavesTheProgramUnharmed(string point)
    {
        using var dir = new TestDir("fault-" + point);
        using var target = TargetProcess.StartC("counter", dir, "32");
        target.WaitForTicks(3);
        string mapsBefore = File.ReadAllText($"/proc/{target.Pid}/maps");
        AmberCli.Run(["checkpoint", target.Pid.ToString(), "--images", dir["img"]], env: new Dictionary<string, string> { ["AMBER_FAULT"] = point })
            .ShouldFail($"injected fault at {point}");
        Assert.True(target.IsRunning);
        Assert.False(target.IsTraced);
        Assert.Equal(mapsBefore, File.ReadAllText($"/proc/{target.Pid}/maps"));
        Assert.False(Directory.Exists(dir["img"]));
        Assert.Empty(Directory.GetDirectories(dir.Path, "img.tmp*"));
        target.WaitForTicks(12); // full heap checksum every 10 ticks
        target.StopAndVerify();
    }

    [Fact]
    public void SigtermMidCheckpointResumesTheProgram()
    {
        using var dir = new TestDir("sigterm");
        using var target = TargetProcess.StartC("counter", dir, "16");
        target.WaitForTicks(3);
        var amber = AmberCli.Start(["checkpoint", target.Pid.ToString(), "--images", dir["img"]],
            env: new Dictionary<string, string> { ["AMBER_FAULT"] = "BeforeCommit:sleep=3000" });
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (!target.IsTraced && DateTime.UtcNow < deadline)
            Thread.Sleep(5);
        Assert.True(target.IsTraced, "amber never attached");
        Spawner.Kill(amber.Pid, 15);
        var run = amber.Wait();
        run.ShouldFail("interrupted");
        Assert.True(target.IsRunning);
        Assert.False(target.IsTraced);
        Assert.False(Directory.Exists(dir["img"]));
        target.WaitForTicks(12);
        target.StopAndVerify();
    }

    [Theory]
    [InlineData("RestoreAfterCreate")]
    [InlineData("RestoreBeforeRelease")]
    public void FailedRestoreLeavesNothingRunning(string point)
    {
        using var dir = new TestDir("rfault-" + point);
        using var target = TargetProcess.StartC("counter", dir, "8");
        target.WaitForTicks(2);
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"]).ShouldSucceed();
        target.ReapKilled();
        AmberCli.Run(["restore", "--images", dir["img"], "--detach"], env: new Dictionary<string, string> { ["AMBER_FAULT"] = point })
            .ShouldFail($"injected fault at {point}");
        Assert.False(target.IsRunning);
        // The image is intact: a second restore works.
        Cycle_RestoreOnly(target, dir["img"]);
        target.WaitForTicks(3);
        target.StopAndVerify();
    }

    [Fact]
    public void PidStillTakenIsReportedAfterTheWait()
    {
        using var dir = new TestDir("busy");
        using var target = TargetProcess.StartC("counter", dir, "8");
        target.WaitForTicks(2);
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"], "--leave-running").ShouldSucceed();
        AmberCli.Run("restore", "--images", dir["img"], "--detach", "--pid-wait", "0.5")
            .ShouldFail($"PID {target.Pid} is still taken after 0.5 s: it belongs to the running process 'counter'");
        target.WaitForTicks(2);
        target.StopAndVerify();
    }

    [Fact]
    public void ImageFilesArePrivate()
    {
        using var dir = new TestDir("modes");
        using var target = TargetProcess.StartC("counter", dir, "8");
        target.WaitForTicks(2);
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["img"], "--leave-running").ShouldSucceed();
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(dir["img"]));
        foreach (var file in Directory.GetFiles(dir["img"]))
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(file));
        target.StopAndVerify();
    }

    private static void Cycle_RestoreOnly(TargetProcess target, string images)
    {
        var restored = AmberCli.Run("restore", "--images", images, "--detach").ShouldSucceed();
        Assert.Equal(target.Pid.ToString(), restored.LastStdoutLine);
    }
}
