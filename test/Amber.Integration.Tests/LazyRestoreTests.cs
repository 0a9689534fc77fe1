using System.Text.RegularExpressions;

namespace Amber.Integration.Tests;

/// <summary>
/// amber restore --lazy: the program runs before its memory is in, and every page it touches,
/// forks with, moves, drops or has the kernel write is as it was saved (userfaultfd).
/// </summary>
public sealed partial class LazyRestoreTests
{
    [Fact]
    public void TheProgramRunsWhileItsMemoryIsPlaced()
    {
        using var dir = new TestDir("lazy");
        // 1 GiB: the pager pushes it in ~1 s, so that the program, under the load of other tests,
        // still touches pages before they are pushed (244 MiB took 0.2-0.3 s: under load, its
        // touches sometimes came after).
        using var target = TargetProcess.StartC("lazy", dir, "1024");
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        CheckpointAndReap(target, dir["img"]);
        // Its final checks (a fork, an mremap, a drop, a kernel write, every page) run as soon as it
        // is back, while the pager is still pushing its 1 GiB.
        var (restored, figures) = StopAndRestoreLazily(target, dir, dir["img"]);
        Assert.Equal(target.Pid.ToString(), restored.LastStdoutLine);
        Assert.True(long.Parse(figures.Groups["mib"].Value) >= 800, restored.Stderr); // 6 pages in 7 of the 1 GiB hold data
        Assert.True(long.Parse(figures.Groups["touches"].Value) > 0, $"no page was placed on a touch: {restored.Stderr}; the program said: {string.Join(" | ", target.Lines().TakeLast(4))}");
        target.FinishAndVerify();
    }

    [Fact]
    public void TheEndOfAChainIsRestoredLazily()
    {
        // Its pages lie in three page files, each read ahead in stretches of its own, in file order.
        using var dir = new TestDir("lazychain");
        using var target = TargetProcess.StartC("lazy", dir, "64");
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["c1"], "--leave-running").ShouldSucceed();
        target.WaitForTicks(3);
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", dir["c2"], "--leave-running", "--parent", "c1").ShouldSucceed();
        target.WaitForTicks(3);
        CheckpointAndReap(target, dir["c3"], "--parent", "c2");
        StopAndRestoreLazily(target, dir, dir["c3"]);
        target.FinishAndVerify();
    }

    [Fact]
    public void APageThatFailsItsChecksumEndsTheProgram()
    {
        using var dir = new TestDir("lazybad");
        using var target = TargetProcess.StartC("lazy", dir, "64");
        target.WaitForTicks(3);
        CheckpointAndReap(target, dir["img"]);
        // The middle of the target's page file is the 64 MiB region, which the restore leaves to the
        // pager. (A child it forked for its checks may have been caught too, with a page file of its own.)
        string pages = Path.Combine(dir["img"], $"pages-{target.Pid}.img");
        CorruptImageTests.Flip(pages, new FileInfo(pages).Length / 2 / 4096 * 4096 + 100);
        AmberCli.Run("restore", "--images", dir["img"], "--detach", "--lazy").ShouldFail("does not match its checksum");
        // Found before the release (the pager pushes pages from the start): the restore killed the
        // process and collected it before it ended, nothing of it is left. Found after: killed, and
        // ours to collect (we are the subreaper it came to).
        if (Amber.Kernel.Proc.ProcFs.Exists(target.Pid))
        {
            target.Restored();
            var status = Exited.Wait(target.Pid, TimeSpan.FromSeconds(10), "lazily restored target");
            Assert.True(!status.Exited && status.TermSignal == 9, $"the program must be killed, not left with a wrong page: {status}");
        }
        target.MarkEnded();
        Assert.DoesNotContain(target.Lines(), l => l.StartsWith("PASS", StringComparison.Ordinal));
    }

    [Fact]
    public void MemoryAChildDoesNotHaveIsGivenUpThoughNoEventSaysSo()
    {
        // Once back, the program marks X MADV_DONTFORK (X's pages still missing) and forks a child
        // that lives 10 s without X. The pager finds the child's X in no mapping, and no event will
        // ever say where it went: it gives those pages up after 5 s, not at the child's end.
        using var dir = new TestDir("lazydontfork");
        using var target = TargetProcess.StartC("dontfork", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        CheckpointAndReap(target, dir["img"]);
        var (restored, figures) = StopAndRestoreLazily(target, dir, dir["img"]);
        Assert.True(long.Parse(figures.Groups["allin"].Value) < 9000, restored.Stderr);
        target.FinishAndVerify();
    }

    [Fact]
    public void ALazyRestoreOfAGroupIsRefused() =>
        AmberCli.Run("restore", "--group", "nogroup", "--lazy").ShouldBeUsageError("--lazy");

    /// <summary>
    /// Checkpoints the target and collects every process the checkpoint killed: a child the target
    /// had forked for its checks at that moment is saved with it, and its zombie, inherited by this
    /// subreaper, would hold its PID against the restore.
    /// </summary>
    private static void CheckpointAndReap(TargetProcess target, string images, params string[] options)
    {
        string[] args = ["checkpoint", target.Pid.ToString(), "--images", images, "--json", .. options];
        var run = AmberCli.Run(args).ShouldSucceed();
        using var json = System.Text.Json.JsonDocument.Parse(run.Stdout);
        target.ReapKilled([.. json.RootElement.GetProperty("processes").EnumerateArray().Select(p => p.GetInt32()).Where(p => p != target.Pid)]);
    }

    /// <summary>
    /// Tells the target to run its final checks once it is back (its stop file), restores it lazily from
    /// <paramref name="images"/>, and returns the restore with its figures, which say pages were pushed ahead.
    /// </summary>
    private static (AmberRun Restored, Match Figures) StopAndRestoreLazily(TargetProcess target, TestDir dir, string images)
    {
        File.WriteAllText(dir["stop"], "");
        var restored = AmberCli.Run("restore", "--images", images, "--detach", "--lazy").ShouldSucceed();
        target.Restored();
        var figures = LazyFigures().Match(restored.Stderr);
        Assert.True(figures.Success, restored.Stderr);
        Assert.True(long.Parse(figures.Groups["pushed"].Value) > 0, $"no page was pushed ahead: {restored.Stderr}");
        return (restored, figures);
    }

    [GeneratedRegex(@"lazy memory: (?<mib>\d+) MiB, all in after (?<allin>\d+) ms: \d+ pages placed on (?<touches>\d+) touches, (?<pushed>\d+) pushed ahead")]
    private static partial Regex LazyFigures();
}
