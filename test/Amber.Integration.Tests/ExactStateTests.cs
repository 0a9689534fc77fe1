using System.Globalization;

namespace Amber.Integration.Tests;

/// <summary>
/// Kernel state that must come back exactly, one self-checking target each (test/TestTargets): two
/// checkpoint-kill-restore cycles, then an incremental one (a checkpoint that lets the program run
/// on, another after it with --parent that ends it, a restore of the second). The program checks its
/// own state every tick and once more, in full, at the end.
/// </summary>
public sealed class ExactStateTests
{
    [Fact] public void UnixSocketBoundByANonRootProgram() => Cycles("unixowner", prepare: OpenToOthers);

    [Fact] public void FileOffsetsOfMemfdsAndFilesMovedEveryTick() => Cycles("memfdpos");

    [Fact] public void FsuidAndFsgidOfEachThread() => Cycles("fsuid", prepare: OpenToOthers);

    [Fact] public void BlockingCallsNeverSeeEintr() => Cycles("eintr");

    [Fact] public void ADeletedWorkingDirectory() => Cycles("deletedcwd");

    [Fact] public void InotifyWatchesOnFilesMovedOrDeleted() => Cycles("inotifygone");

    [Fact] public void EpollWatchesOnFdsClosedOrReused() => Cycles("epollstale");

    [Fact] public void TwoProcessesSharingOneFdTable() => Cycles("fdtable");

    [Fact] public void PipeFlagsEndsAndOpenFilesOfOneEnd() => Cycles("pipeflags");

    [Fact] public void UnixSocketsShutDownWidowedAndWaitingToBeAccepted() => Cycles("unixstate");

    [Fact] public void MadviseAndMlockStateOfEveryMapping() => Cycles("madvise");

    [Fact] public void MappingFlagsSealsAndGuardPages() => Cycles("vmaflags");

    [Fact] public void SystemVAttachmentsSplitAndPartlyUnmapped() => Cycles("sysvsplit");

    [Fact] public void SystemVAttachmentsMovedAndOvermapped() => Cycles("sysvmoved");

    [Fact] public void SessionsOrphanedGroupsAndZombies() => Cycles("sessions");

    /// <summary>The work directory and every directory above it searchable (a target that drops to nobody).</summary>
    private static void OpenToOthers(TestDir dir)
    {
        for (var d = new DirectoryInfo(dir.Path); d is not null; d = d.Parent)
            d.UnixFileMode |= UnixFileMode.OtherExecute;
    }

    private static void Cycles(string target, int ports = 0, Action<TestDir>? prepare = null)
    {
        using var dir = new TestDir(target);
        prepare?.Invoke(dir);
        var args = Enumerable.Range(0, ports).Select(_ => Http.FreePort().ToString(CultureInfo.InvariantCulture)).ToArray();
        using var process = TargetProcess.StartC(target, dir, args);
        process.WaitForLine(l => l == "READY", "READY");
        process.WaitForTicks(3);
        string pid = process.Pid.ToString(CultureInfo.InvariantCulture);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            var children = process.Tree().Skip(1).ToList();
            Checkpoint(process, "checkpoint", pid, "--images", dir[$"img{cycle}"]);
            process.ReapKilled(children);
            AmberCli.Run("restore", "--images", dir[$"img{cycle}"], "--detach").ShouldSucceed();
            process.WaitForTicks(3);
        }
        // Incremental: the first checkpoint lets it run on (its state must not move), the second ends it.
        Checkpoint(process, "checkpoint", pid, "--images", dir["img3"], "--leave-running");
        Assert.True(process.IsRunning && !process.IsTraced, "a checkpoint with --leave-running must leave the program running untraced");
        process.WaitForTicks(3);
        var tree = process.Tree().Skip(1).ToList();
        Checkpoint(process, "checkpoint", pid, "--images", dir["img4"], "--parent", dir["img3"]);
        process.ReapKilled(tree);
        AmberCli.Run("restore", "--images", dir["img4"], "--detach").ShouldSucceed();
        process.WaitForTicks(3);
        process.StopAndVerify();
    }

    /// <summary>
    /// A checkpoint of a program that makes and reads inotify events every tick: the freeze may land
    /// between the two, and amber itself tries again once the program has had a moment to read them.
    /// </summary>
    private static void Checkpoint(TargetProcess process, params string[] args)
    {
        AmberCli.Run(args).ShouldSucceed();
        Assert.True(Directory.Exists(args[Array.IndexOf(args, "--images") + 1]), $"no checkpoint of process {process.Pid}");
    }
}
