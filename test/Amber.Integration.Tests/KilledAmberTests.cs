using System.Diagnostics;
using System.Globalization;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;

namespace Amber.Integration.Tests;

/// <summary>
/// amber killed with SIGKILL in the middle of a checkpoint must never harm the program: its ptrace
/// work runs in a worker the kill does not reach, which finishes on its own — resuming the program
/// exactly as it was, or, once the checkpoint is committed and amber was still there to say so,
/// ending it (it then comes back from that checkpoint).
/// </summary>
public sealed class KilledAmberTests
{
    [Fact]
    public void AmberKilledAtThirtyMomentsOfACheckpointNeverHarmsTheProgram()
    {
        using var dir = new TestDir("kill9");
        using var target = TargetProcess.StartC("counter", dir, "512"); // 512 MiB, all of it checked every 10 ticks
        target.WaitForLine(l => l == "READY", "READY", TimeSpan.FromSeconds(60));
        target.WaitForTicks(3);
        string pid = target.Pid.ToString(CultureInfo.InvariantCulture);

        var clock = Stopwatch.StartNew();
        AmberCli.Run("checkpoint", pid, "--images", dir["probe"], "--leave-running").ShouldSucceed();
        int spanMs = (int)(clock.ElapsedMilliseconds * 1.3) + 20; // kills land over a whole checkpoint
        Directory.Delete(dir["probe"], recursive: true);

        int seed = Environment.TickCount;
        var random = new Random(seed);
        int ended = 0;
        for (int i = 0; i < 30; i++)
        {
            bool leaveRunning = i % 2 == 0;
            string images = dir[$"k{i}"];
            int delay = random.Next(spanMs);
            var amber = AmberCli.Start(["checkpoint", pid, "--images", images, .. leaveRunning ? ["--leave-running"] : Array.Empty<string>()]);
            Thread.Sleep(delay);
            Spawner.Kill(amber.Pid, 9);
            amber.Wait();
            string what = $"kill {i + 1} of 30 ({(leaveRunning ? "--leave-running" : "ending the program")}, {delay} ms in of {spanMs}, seed {seed})";
            AmberWorkers.WaitUntilDone(images, what);
            Assert.False(target.IsTraced, $"{what}: the program is still traced");
            Assert.NotEqual('t', ProcFs.TryReadStatus(target.Pid, out var s) && s is not null ? s.State : 'x');
            if (!target.IsRunning)
            {
                // amber was still there when the worker asked to end it: the checkpoint is whole.
                Assert.False(leaveRunning, $"{what}: the program ended");
                Assert.True(File.Exists(Path.Combine(images, "manifest.img")), $"{what}: the program was ended without a committed checkpoint");
                target.ReapKilled();
                AmberCli.Run("restore", "--images", images, "--detach").ShouldSucceed();
                ended++;
            }
            target.WaitForTicks(11, TimeSpan.FromSeconds(60)); // every page of the heap checked again
            if (Directory.Exists(images))
                Directory.Delete(images, recursive: true);
            foreach (var left in Directory.GetDirectories(dir.Path, $"k{i}.tmp-*"))
                Assert.Fail($"{what}: the partial checkpoint {left} was left behind");
        }
        target.StopAndVerify();
        Assert.True(ended < 30, "every kill came too late to test anything");
    }

    /// <summary>
    /// amber restore killed with SIGKILL at a random moment leaves nothing half-made: its worker, which
    /// the kill does not reach, ends what it made if amber went before the release, and releases all
    /// of it otherwise, so either the whole tree runs (and carries on) or none of it is there. (With the
    /// restore in amber itself, a kill between two processes' release left the released ones running
    /// and the rest killed by PTRACE_O_EXITKILL: the tree's root gone, its children on.)
    /// </summary>
    [Fact]
    public void AmberKilledAtTenMomentsOfARestoreLeavesTheWholeTreeOrNothing()
    {
        using var dir = new TestDir("kill9r");
        using var target = TargetProcess.StartC("tree", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        var pids = target.Tree();
        string pid = target.Pid.ToString(CultureInfo.InvariantCulture);
        AmberCli.Run("checkpoint", pid, "--images", dir["img"]).ShouldSucceed();
        target.ReapKilled(pids.Skip(1).ToList());
        var clock = Stopwatch.StartNew();
        AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        int spanMs = (int)(clock.ElapsedMilliseconds * 1.3) + 20;
        Assert.True(target.IsRunning);
        int seed = Environment.TickCount;
        var random = new Random(seed);
        int whole = 0, none = 0;
        for (int i = 0; i < 10; i++)
        {
            // End the running tree with a checkpoint, then restore it and kill the restore.
            string images = dir[$"r{i}"];
            var running = target.Tree();
            AmberCli.Run("checkpoint", pid, "--images", images).ShouldSucceed();
            ReapAll(running);
            int delay = random.Next(spanMs);
            var amber = AmberCli.Start(["restore", "--images", images, "--detach"]);
            Thread.Sleep(delay);
            Spawner.Kill(amber.Pid, 9);
            amber.Wait();
            string what = $"kill {i + 1} of 10 ({delay} ms in of {spanMs}, seed {seed})";
            AmberWorkers.WaitUntilDone(images, what);
            if (!target.IsRunning)
            {
                // Not released: the worker ended and collected every process it made.
                ReapAll(pids);
                Assert.True(pids.All(p => !ProcFs.Exists(p)), $"{what}: processes of a killed restore are left: {string.Join(", ", pids.Where(ProcFs.Exists))}");
                none++;
                AmberCli.Run("restore", "--images", images, "--detach").ShouldSucceed();
            }
            else
            {
                Assert.True(pids.All(ProcFs.Exists), $"{what}: only {string.Join(", ", pids.Where(ProcFs.Exists))} of {string.Join(", ", pids)} are there");
                Assert.All(pids, p => Assert.Equal(0, ProcFs.ReadStatus(p).TracerPid));
                whole++;
            }
            target.WaitForTicks(3);
        }
        target.StopAndVerify();
        Assert.True(whole + none == 10);
    }

    private static void ReapAll(IReadOnlyList<int> pids)
    {
        var deadline = DateTime.UtcNow.AddSeconds(10);
        foreach (int p in pids)
        {
            while (ProcFs.Exists(p) && !Spawner.TryReap(p, out _))
            {
                Assert.True(DateTime.UtcNow < deadline, $"process {p} did not go away");
                Thread.Sleep(2);
            }
        }
    }
}
