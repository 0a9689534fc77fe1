using System.Globalization;
using Amber.Kernel;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>
/// Incremental checkpoints: a chain of ten of a program that changes a few pages between them, each
/// only a fraction of the full one, and a restore from every one of them bringing back exactly that
/// moment (the program checks every page against its tick); a damaged page of an earlier checkpoint
/// is refused by the restores that need it.
/// </summary>
public sealed class IncrementalTests
{
    [Fact]
    public void EveryCheckpointOfAChainOfTenRestoresItsOwnMoment()
    {
        using var dir = new TestDir("chain");
        string store = dir["store"];
        using var target = StartChain(dir, store, "16");
        // Each checkpoint at a known tick: the program is stopped (SIGSTOP) while it is taken, and
        // comes back stopped from it.
        var ticks = TakeChain(target, store, 10);
        long full = Size(Path.Combine(store, "c1"));
        for (int i = 2; i <= 10; i++)
            Assert.True(Size(Path.Combine(store, $"c{i}")) < full / 4, $"c{i} is {Size(Path.Combine(store, $"c{i}"))} bytes, the full c1 {full}");
        Spawner.Kill(target.Pid, 9);
        target.ReapKilled();

        // Back to each moment, in any order: the first tick after it is the next one, and every page checks out.
        foreach (int i in new[] { 10, 1, 5, 2, 9, 3, 8, 4, 7, 6 })
            RestoreAndCheck(target, Path.Combine(store, $"c{i}"), ticks[i - 1]);

        // A merge interrupted by kill -9 just before its swap leaves the chain as it was, and usable.
        var merging = AmberCli.Start(["merge", Path.Combine(store, "c10")], null, new Dictionary<string, string> { ["AMBER_FAULT"] = "MergeBeforeSwap:sleep=5000" });
        GroupHome.WaitUntil(() => Directory.GetDirectories(store, "c10.merge-*").Any(d => File.Exists(Path.Combine(d, "manifest.img"))), "the merged checkpoint to be written beside c10");
        Spawner.Kill(merging.Pid, 9);
        merging.Wait();
        AmberCli.Run("verify", store).ShouldSucceed();
        Assert.Contains("incremental after c9", AmberCli.Run("inspect", Path.Combine(store, "c10")).ShouldSucceed().Stdout);

        // Merged: c10 is one full checkpoint, the chain it folded is gone, and it still restores its moment.
        var merged = AmberCli.Run("merge", Path.Combine(store, "c10")).ShouldSucceed();
        Assert.Contains("removed c9 c8 c7 c6 c5 c4 c3 c2 c1", merged.Stderr);
        Assert.Equal(["c10"], Directory.GetDirectories(store).Select(Path.GetFileName));
        AmberCli.Run("verify", store).ShouldSucceed();
        AmberCli.Run("restore", "--images", Path.Combine(store, "c10"), "--detach").ShouldSucceed();
        target.Restored();
        int before = target.Lines().Count;
        Spawner.Kill(target.Pid, Signals.SIGCONT);
        target.WaitForLine(l => target.Lines().Count > before + 2, "ticks after the restore of the merged checkpoint");
        Assert.Equal(ticks[9] + 1, int.Parse(target.Lines()[before][5..], CultureInfo.InvariantCulture));
        File.WriteAllText(dir["stop"], "");
        target.FinishAndVerify();
    }

    [Fact]
    public void AParentIsFoundBesideTheNewCheckpointByItsName()
    {
        using var dir = new TestDir("parent-name");
        using var elsewhere = new TestDir("parent-elsewhere");
        string store = dir["store"];
        Directory.CreateDirectory(store);
        using var target = TargetProcess.StartC("counter", dir, "16");
        target.WaitForTicks(3);
        string pid = target.Pid.ToString(CultureInfo.InvariantCulture);
        AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "c1"), "--leave-running").ShouldSucceed();
        // The CLI runs in the test's working directory, not in the store: "c1" is the c1 beside c2.
        var second = AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "c2"), "--leave-running", "--parent", "c1").ShouldSucceed();
        Assert.Contains("(incremental after c1:", second.Stderr);
        // A path is taken as given, and must lead into the same store.
        AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "c3"), "--leave-running", "--parent", Path.Combine(store, "c2") + "/").ShouldSucceed();
        Directory.CreateDirectory(elsewhere["c1"]);
        AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "c4"), "--leave-running", "--parent", elsewhere["c1"])
            .ShouldBeUsageError($"--parent {elsewhere["c1"]} is {elsewhere["c1"]}, not a checkpoint beside --images in {store}");
        AmberCli.Run("checkpoint", pid, "--images", Path.Combine(store, "c4"), "--leave-running", "--parent", "c9")
            .ShouldFail($"the parent checkpoint {Path.Combine(store, "c9")} does not exist");
        Assert.Equal(["c1", "c2", "c3"], Directory.GetDirectories(store).Select(Path.GetFileName).Order());
        File.WriteAllText(dir["stop"], "");
        target.FinishAndVerify();
    }

    [Fact]
    public void ADamagedPageOfAnEarlierCheckpointIsRefusedByTheRestoresThatNeedIt()
    {
        using var dir = new TestDir("chain-damage");
        string store = dir["store"];
        Directory.CreateDirectory(store);
        using var target = TargetProcess.StartC("chain", dir, "4");
        target.WaitForLine(l => l == "READY", "READY");
        AmberCli.Run("checkpoint", target.Pid.ToString(CultureInfo.InvariantCulture), "--images", Path.Combine(store, "c1"), "--leave-running").ShouldSucceed();
        target.WaitForTicks(2);
        AmberCli.Run("checkpoint", target.Pid.ToString(CultureInfo.InvariantCulture), "--images", Path.Combine(store, "c2"), "--parent", Path.Combine(store, "c1")).ShouldSucceed();
        target.ReapKilled();

        // A bit flipped in the middle of c1's page data: c2 keeps most of its pages there.
        string pages = Directory.GetFiles(Path.Combine(store, "c1"), "pages-*.img").Single();
        using (var f = new FileStream(pages, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = f.Length / 2;
            int b = f.ReadByte();
            f.Position = f.Length / 2;
            f.WriteByte((byte)(b ^ 0x10));
        }
        var refused = AmberCli.Run("restore", "--images", Path.Combine(store, "c2"), "--detach").ShouldFail("does not match its checksum");
        Assert.Contains("source checkpoint", refused.Stderr);
        Assert.False(target.IsRunning);
        // Removing the checkpoint an incremental one needs is refused with the reason too.
        Directory.Move(Path.Combine(store, "c1"), Path.Combine(store, "moved"));
        AmberCli.Run("restore", "--images", Path.Combine(store, "c2"), "--detach").ShouldFail("needs checkpoint c1 beside it");
        Assert.False(target.IsRunning);
    }

    [Fact]
    public void TwentyTrackedCheckpointsInARowNeverChangeWhatTheProgramComputes()
    {
        using var home = new GroupHome("tracked");
        int pid = home.Run("tr", [], TargetBinaries.Get("chain"), home.Dir.Path, "32");
        var chain = new GroupMember(pid, home.Home.GroupLog("tr"));
        chain.WaitForLine("READY");
        chain.WaitForTicks(2);
        // The coordinator keeps each process's write tracker between checkpoints: pages known
        // unwritten are not even read, and the program, checking every page each tick, sees nothing.
        long skipped = 0;
        for (int i = 1; i <= 20; i++)
        {
            var run = home.Amber("checkpoint", "--group", "tr").ShouldSucceed();
            if (i > 1)
            {
                var known = System.Text.RegularExpressions.Regex.Match(run.Stderr, @"(\d+) of them known unwritten");
                Assert.True(known.Success, run.Stderr);
                skipped += long.Parse(known.Groups[1].Value, CultureInfo.InvariantCulture);
            }
        }
        Assert.True(skipped > 19 * 7000, $"only {skipped} pages were known unwritten over 19 tracked checkpoints of 8192 pages");
        chain.WaitForTicks(5);
        home.Amber("verify", "--group", "tr").ShouldSucceed();
        // And the latest restores the moment it was taken.
        home.Amber("checkpoint", "--group", "tr", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !chain.IsRunning, "the program to end");
        home.Amber("restore", "--group", "tr").ShouldSucceed();
        chain.WaitForTicks(5);
    }

    [Fact]
    public void PagesCopiedBeforeTheFreezeAndWrittenAgainMeanwhileComeBackAsTheyWereAtTheFreeze()
    {
        using var home = new GroupHome("precopy");
        int pid = home.Run("pc", [], TargetBinaries.Get("scribbler"), "32");
        var scribbler = new GroupMember(pid, home.Home.GroupLog("pc"));
        scribbler.WaitForLine("READY");
        scribbler.WaitForTicks(2);
        // The pages written since the last checkpoint are copied while the program runs; it goes on
        // writing tens of thousands of pages a second, so some are written again before the freeze.
        var checkpoints = new List<string>();
        long copiedBefore = 0;
        for (int i = 1; i <= 6; i++)
        {
            var run = home.Amber("checkpoint", "--group", "pc").ShouldSucceed();
            checkpoints.Add(run.LastStdoutLine);
            if (i > 1)
            {
                // A checkpoint that found nothing to copy ahead says nothing of it; the sum is what is checked.
                var copied = System.Text.RegularExpressions.Regex.Match(run.Stderr, @"(\d+) copied before the freeze");
                copiedBefore += copied.Success ? long.Parse(copied.Groups[1].Value, CultureInfo.InvariantCulture) : 0;
            }
            scribbler.WaitForTicks(1);
        }
        Assert.True(copiedBefore > 5 * 1000, $"only {copiedBefore} pages were copied before the freeze over 5 tracked checkpoints");
        // Each checkpoint is one moment: every page whole, and all of them adding up to the sum the
        // program kept (a page copied at another moment than the others would not).
        home.Amber("stop", "--group", "pc").ShouldSucceed();
        GroupHome.WaitUntil(() => !scribbler.IsRunning, "the program to end");
        foreach (string checkpoint in checkpoints.Skip(1))
        {
            home.Amber("restore", "--group", "pc", "--from", checkpoint).ShouldSucceed();
            scribbler.WaitForNewTicks(2);
            home.Amber("stop", "--group", "pc").ShouldSucceed();
            GroupHome.WaitUntil(() => !scribbler.IsRunning, "the program to end");
        }
    }

    [Fact]
    public void WritesBeforeAHalfMappedOverSinceTheLastCheckpointAreNotLost()
    {
        using var home = new GroupHome("split");
        int pid = home.Run("sp", [], TargetBinaries.Get("splitslab"), home.Dir.Path);
        var slab = new GroupMember(pid, home.Home.GroupLog("sp"));
        slab.WaitForLine("ROUND 1");
        home.Amber("checkpoint", "--group", "sp").ShouldSucceed(); // the whole slab tracked from here
        // Its first half written, its second half mapped over: the scan of the slab stops at the
        // second half, after the kernel reported (and protected again) the first half's writes.
        Spawner.Kill(pid, 10); // SIGUSR1
        slab.WaitForLine("ROUND 2");
        home.Amber("checkpoint", "--group", "sp", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !slab.IsRunning, "the program to end");
        home.Amber("restore", "--group", "sp").ShouldSucceed();
        Spawner.Kill(pid, 12); // SIGUSR2
        slab.WaitForLine("CHECK 2 OK");
    }

    [Fact]
    public void CompressedCheckpointsOfEveryCodecMakeOneChainThatRestoresMergesAndRefusesADamagedBlock()
    {
        using var dir = new TestDir("compressed");
        string store = dir["store"];
        using var target = StartChain(dir, store, "32");
        // zstd, then lz4, then none, then zstd again: one chain whose checkpoints keep each other's pages.
        string[] codecs = ["zstd", "lz4", "none", "zstd"];
        var ticks = TakeChain(target, store, codecs.Length, i => ["--compress", codecs[i - 1]]);
        // 32 MiB of patterned pages: compressed, the full checkpoint is a small fraction of that.
        Assert.True(Size(Path.Combine(store, "c1")) < 4 << 20, $"c1 is {Size(Path.Combine(store, "c1"))} bytes");
        Spawner.Kill(target.Pid, 9);
        target.ReapKilled();
        AmberCli.Run("verify", store).ShouldSucceed();
        foreach (int i in new[] { 4, 1, 3, 2 })
            RestoreAndCheck(target, Path.Combine(store, $"c{i}"), ticks[i - 1]);

        // A checkpoint that later ones refer to is never merged: its page files would change under them.
        AmberCli.Run("merge", Path.Combine(store, "c2")).ShouldFail("c2 cannot be merged: c3, c4 refer to its pages; merge c4 instead");
        AmberCli.Run("verify", store).ShouldSucceed();

        // Merged, the chain stays compressed and restores the same moment.
        AmberCli.Run("merge", Path.Combine(store, "c4")).ShouldSucceed();
        Assert.Equal(["c4"], Directory.GetDirectories(store).Select(Path.GetFileName));
        Assert.True(Size(Path.Combine(store, "c4")) < 4 << 20, $"the merged c4 is {Size(Path.Combine(store, "c4"))} bytes");
        AmberCli.Run("verify", store).ShouldSucceed();
        RestoreAndCheck(target, Path.Combine(store, "c4"), ticks[3]);

        // A byte flipped inside a compressed block: found by verify, refused by the restore.
        string pages = Directory.GetFiles(Path.Combine(store, "c4"), "pages-*.img").Single();
        using (var f = new FileStream(pages, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = 4096 + 100;
            int b = f.ReadByte();
            f.Position -= 1;
            f.WriteByte((byte)(b ^ 0x10));
        }
        AmberCli.Run("verify", Path.Combine(store, "c4")).ShouldFail("are damaged");
        AmberCli.Run("restore", "--images", Path.Combine(store, "c4"), "--detach").ShouldFail("checksum");
        Assert.False(target.IsRunning);
    }

    [Fact]
    public void AMergeTakesInTheBasePageFileByAHardLinkAndWhatFollowsRestoresAndMergesAgain()
    {
        using var dir = new TestDir("layers");
        string store = dir["store"];
        using var target = StartChain(dir, store, "16");
        var ticks = TakeChain(target, store, 4);
        string basePages = Directory.GetFiles(Path.Combine(store, "c1"), "pages-*.img").Single();
        string layer1 = Path.GetFileName(basePages).Replace(".img", ".layer1.img", StringComparison.Ordinal);
        ulong baseInode = TestDir.Inode(basePages);

        // c1's page file (16 MiB, all in use) is taken in whole, the very same file; the pages the
        // three checkpoints after it wrote are copied.
        var merged = AmberCli.Run("merge", Path.Combine(store, "c4")).ShouldSucceed();
        var figures = System.Text.RegularExpressions.Regex.Match(merged.Stderr, @"merged c4 into a full checkpoint: (\d+) pages copied, (\d+) kept in page files taken in by hard links");
        Assert.True(figures.Success, merged.Stderr);
        long copied = long.Parse(figures.Groups[1].Value, CultureInfo.InvariantCulture), linked = long.Parse(figures.Groups[2].Value, CultureInfo.InvariantCulture);
        Assert.True(linked > 3500 && copied < linked / 4, $"{copied} pages copied, {linked} linked");
        Assert.Contains("removed c3 c2 c1", merged.Stderr);
        Assert.Equal(baseInode, TestDir.Inode(Path.Combine(store, "c4", layer1)));
        var inspect = AmberCli.Run("inspect", Path.Combine(store, "c4")).ShouldSucceed().Stdout;
        Assert.Contains("full, made by a merge", inspect);
        Assert.Contains("requires page-layers", inspect);

        // Incremental checkpoints after it keep their unchanged pages in its layer; they restore, and
        // a merge of them takes the same file in again.
        ticks.AddRange(TakeChain(target, store, 2, first: 5));
        Spawner.Kill(target.Pid, 9);
        target.ReapKilled();
        AmberCli.Run("verify", store).ShouldSucceed();
        RestoreAndCheck(target, Path.Combine(store, "c5"), ticks[4]);
        CopyCheckpoints(store, dir["copy"], "c4", "c5", "c6");
        Assert.Contains("removed c5 c4", AmberCli.Run("merge", Path.Combine(store, "c6")).ShouldSucceed().Stderr);
        Assert.Equal(baseInode, TestDir.Inode(Path.Combine(store, "c6", layer1)));
        AmberCli.Run("verify", store).ShouldSucceed();
        RestoreAndCheck(target, Path.Combine(store, "c6"), ticks[5]);

        // With --copy, every page is copied: a checkpoint sharing no file, that restores the same moment.
        var copiedAll = AmberCli.Run("merge", "--copy", Path.Combine(dir["copy"], "c6")).ShouldSucceed();
        Assert.DoesNotContain("hard links", copiedAll.Stderr);
        Assert.Empty(Directory.GetFiles(Path.Combine(dir["copy"], "c6"), "*.layer*"));
        Assert.DoesNotContain("requires", AmberCli.Run("inspect", Path.Combine(dir["copy"], "c6")).ShouldSucceed().Stdout);
        RestoreAndCheck(target, Path.Combine(dir["copy"], "c6"), ticks[5]);

        // A bit flipped in the layer: found by verify, refused by the restore, which says where the page was kept.
        using (var f = new FileStream(Path.Combine(store, "c6", layer1), FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = f.Length / 2;
            int b = f.ReadByte();
            f.Position = f.Length / 2;
            f.WriteByte((byte)(b ^ 0x10));
        }
        AmberCli.Run("verify", Path.Combine(store, "c6")).ShouldFail("are damaged");
        AmberCli.Run("restore", "--images", Path.Combine(store, "c6"), "--detach").ShouldFail("kept in layer 1 of the checkpoint");
        Assert.False(target.IsRunning);
    }

    /// <summary>chain.c with <paramref name="mib"/> MiB of pages, running, and an empty store for it.</summary>
    private static TargetProcess StartChain(TestDir dir, string store, string mib)
    {
        Directory.CreateDirectory(store);
        var target = TargetProcess.StartC("chain", dir, mib);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(2);
        return target;
    }

    /// <summary>
    /// Checkpoints c1..c<paramref name="count"/> of chain.c into the store, each taken with the program
    /// stopped right after a tick and incremental after the one before; returns their ticks.
    /// </summary>
    private static List<int> TakeChain(TargetProcess target, string store, int count, Func<int, string[]>? options = null, int first = 1)
    {
        var ticks = new List<int>();
        for (int i = first; i < first + count; i++)
        {
            Spawner.Kill(target.Pid, Signals.SIGSTOP);
            WaitStopped(target.Pid);
            ticks.Add(target.LastTick());
            string[] parent = i == 1 ? [] : ["--parent", Path.Combine(store, $"c{i - 1}")];
            var run = AmberCli.Run(["checkpoint", target.Pid.ToString(CultureInfo.InvariantCulture), "--images", Path.Combine(store, $"c{i}"), "--leave-running",
                .. parent, .. options?.Invoke(i) ?? []]).ShouldSucceed();
            if (i > 1)
                Assert.Contains($"incremental after c{i - 1}", run.Stderr);
            Spawner.Kill(target.Pid, Signals.SIGCONT);
            target.WaitForTicks(3);
        }
        return ticks;
    }

    /// <summary>Restores a checkpoint of chain.c taken stopped after <paramref name="tick"/>: it goes on from the next tick, every page checked.</summary>
    private static void RestoreAndCheck(TargetProcess target, string checkpoint, int tick)
    {
        var restored = AmberCli.Run("restore", "--images", checkpoint, "--detach").ShouldSucceed();
        Assert.Equal(target.Pid.ToString(CultureInfo.InvariantCulture), restored.LastStdoutLine);
        target.Restored();
        int lines = target.Lines().Count;
        Spawner.Kill(target.Pid, Signals.SIGCONT);
        target.WaitForLine(l => target.Lines().Count > lines + 2, "ticks after the restore");
        Assert.Equal($"tick {tick + 1}", target.Lines()[lines]);
        Spawner.Kill(target.Pid, 9);
        target.ReapKilled();
    }

    /// <summary>Copies checkpoints of <paramref name="store"/> into a new store, file by file (no file shared).</summary>
    private static void CopyCheckpoints(string store, string into, params string[] names)
    {
        foreach (string name in names)
        {
            Directory.CreateDirectory(Path.Combine(into, name));
            foreach (string file in Directory.GetFiles(Path.Combine(store, name)))
                File.Copy(file, Path.Combine(into, name, Path.GetFileName(file)));
        }
    }

    private static long Size(string dir) => new DirectoryInfo(dir).EnumerateFiles().Sum(f => f.Length);

    private static void WaitStopped(int pid) =>
        GroupHome.WaitUntil(() => Amber.Kernel.Proc.ProcFs.ReadStat(pid).State == 'T', $"process {pid} to stop");
}
