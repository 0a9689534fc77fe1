using System.Globalization;
using System.Text;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>
/// Storage checkpoints: a program's files (storage.c: a log written through an open fd, a hard link
/// to it, a sparse 4 MiB file written block by block, files made and removed, a symlink) captured at
/// the same barrier as its memory, incrementally, and rolled back by the restore of any checkpoint
/// of a chain, whatever was done to them meanwhile; the program checks its files against its own
/// count at every tick, and the test checks them against the count of the moment restored.
/// </summary>
public sealed class StorageTests
{
    private const int Blocks = 1024;
    private const int Block = 4096;

    [Fact]
    public void EveryCheckpointOfAChainOfTenPutsTheFilesBackAsTheyWereAtItsMoment()
    {
        using var dir = new TestDir("storage-chain");
        string store = dir["store"], files = dir["files"];
        using var target = StartStorage(dir, store, files);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);

        // Each checkpoint at a known tick: the program stops itself (SIGUSR1) right after one.
        var ticks = new List<int>();
        for (int i = 1; i <= 10; i++)
        {
            StopAtATick(target);
            ticks.Add(target.LastTick());
            AssertFilesOfTick(files, ticks[^1]);
            string[] parent = i == 1 ? [] : ["--parent", Path.Combine(store, $"c{i - 1}")];
            var run = AmberCli.Run(["checkpoint", Pid(target), "--images", Path.Combine(store, $"c{i}"), "--leave-running", "--storage", files, .. parent]).ShouldSucceed();
            var captured = System.Text.RegularExpressions.Regex.Match(run.Stderr, @"storage: 6 files, (\d+) read, (\d+) blocks stored");
            Assert.True(captured.Success, run.Stderr);
            // Incremental: only what changed is read and stored (the log, a few blocks of big, the new f files).
            if (i > 1)
                Assert.True(int.Parse(captured.Groups[2].Value, CultureInfo.InvariantCulture) < 60, run.Stderr);
            Spawner.Kill(target.Pid, Signals.SIGCONT);
            target.WaitForTicks(4);
        }
        Spawner.Kill(target.Pid, 9);
        target.ReapKilled();

        // Back to each moment, in any order, whatever was done to the files since.
        foreach (int i in new[] { 10, 1, 6, 3, 9, 2 })
        {
            Vandalize(files);
            var restored = AmberCli.Run("restore", "--images", Path.Combine(store, $"c{i}"), "--detach").ShouldSucceed();
            Assert.Contains("storage rolled back", restored.Stderr);
            // The program's own log is outside its storage: changed since, and said so.
            Assert.Contains("changed since the checkpoint", restored.Stderr);
            target.Restored();
            AssertFilesOfTick(files, ticks[i - 1]); // it comes back stopped, at that tick
            AssertCarriesOnFrom(target, ticks[i - 1]); // and its own checks, every tick, agree
            Spawner.Kill(target.Pid, 9);
            target.ReapKilled();
        }

        // Merged into one full checkpoint, storage included: the same moment comes back.
        var merged = AmberCli.Run("merge", Path.Combine(store, "c10")).ShouldSucceed();
        Assert.Contains("removed c9", merged.Stderr);
        AmberCli.Run("verify", store).ShouldSucceed();
        Vandalize(files);
        AmberCli.Run("restore", "--images", Path.Combine(store, "c10"), "--detach").ShouldSucceed();
        target.Restored();
        AssertFilesOfTick(files, ticks[9]);
        AssertCarriesOnFrom(target, ticks[9]);
        File.WriteAllText(dir["stop"], "");
        target.FinishAndVerify();
    }

    [Fact]
    public void AMergeKeepsTheBlocksOfTheBaseWhereTheyAreAndTheFilesComeBackAsTheyWere()
    {
        using var dir = new TestDir("storage-layers");
        string store = dir["store"], files = dir["files"], ballast = dir["ballast"];
        using var target = StartStorage(dir, store, files);
        target.WaitForLine(l => l == "READY", "READY");
        // A second storage directory with 2 MiB that never change: c1 stores them, the rest keep them there.
        Directory.CreateDirectory(ballast);
        byte[] data = new byte[2 << 20];
        new Random(5).NextBytes(data);
        File.WriteAllBytes(Path.Combine(ballast, "data"), data);
        target.WaitForTicks(3);
        var ticks = new List<int>();
        for (int i = 1; i <= 3; i++)
        {
            StopAtATick(target);
            ticks.Add(target.LastTick());
            string[] parent = i == 1 ? [] : ["--parent", Path.Combine(store, $"c{i - 1}")];
            AmberCli.Run(["checkpoint", Pid(target), "--images", Path.Combine(store, $"c{i}"), "--leave-running", "--storage", files, "--storage", ballast, .. parent]).ShouldSucceed();
            Spawner.Kill(target.Pid, Signals.SIGCONT);
            target.WaitForTicks(4);
        }
        Spawner.Kill(target.Pid, 9);
        target.ReapKilled();

        // c1's storage page file is taken in whole by the merge, as a layer; the blocks written since are copied.
        var merged = AmberCli.Run("merge", Path.Combine(store, "c3")).ShouldSucceed();
        Assert.Contains("kept in page files taken in by hard links", merged.Stderr);
        Assert.True(File.Exists(Path.Combine(store, "c3", "storage-pages.layer1.img")), merged.Stderr);
        AmberCli.Run("verify", store).ShouldSucceed();

        // Every file comes back from the layer and the merged checkpoint's own blocks together.
        Vandalize(files);
        File.WriteAllBytes(Path.Combine(ballast, "data"), new byte[100]);
        AmberCli.Run("restore", "--images", Path.Combine(store, "c3"), "--detach").ShouldSucceed();
        target.Restored();
        Assert.Equal(data, File.ReadAllBytes(Path.Combine(ballast, "data")));
        AssertFilesOfTick(files, ticks[2]);
        AssertCarriesOnFrom(target, ticks[2]);
        File.WriteAllText(dir["stop"], "");
        target.FinishAndVerify();
    }

    [Fact]
    public void ADamagedBlockIsFoundByVerifyAndRefusedByTheRestoreBeforeAnyFileIsTouched()
    {
        using var dir = new TestDir("storage-damage");
        string store = dir["store"], files = dir["files"];
        using var target = StartStorage(dir, store, files);
        target.WaitForTicks(30);
        AmberCli.Run("checkpoint", Pid(target), "--images", Path.Combine(store, "c1"), "--storage", files).ShouldSucceed();
        target.ReapKilled();

        // A bit flipped in the middle of the stored blocks.
        string blocks = Path.Combine(store, "c1", "storage-pages.img");
        using (var f = new FileStream(blocks, FileMode.Open, FileAccess.ReadWrite))
        {
            f.Position = Block + (f.Length - Block) / 2;
            int b = f.ReadByte();
            f.Position -= 1;
            f.WriteByte((byte)(b ^ 0x04));
        }
        var verify = AmberCli.Run("verify", Path.Combine(store, "c1")).ShouldFail("are damaged");
        Assert.Contains("storage-pages.img: checksum mismatch", verify.Stdout);
        // Changed since (a file still as saved is not even read back, damaged copy or not).
        Vandalize(files);
        File.WriteAllText(Path.Combine(files, "after"), "written after the checkpoint");
        string State() => string.Join("\n", Directory.GetFileSystemEntries(files, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal)
            .Select(p => $"{p} {(File.Exists(p) ? new FileInfo(p).Length : -1)} {File.GetUnixFileMode(p)}"));
        string before = State();
        string log = File.ReadAllText(Path.Combine(files, "log"));
        AmberCli.Run("restore", "--images", Path.Combine(store, "c1"), "--detach").ShouldFail("fails its checksum");
        Assert.False(target.IsRunning);
        // Nothing was rolled back: the damage was found before the first file changed.
        Assert.Equal(before, State());
        Assert.Equal(log, File.ReadAllText(Path.Combine(files, "log")));
    }

    [Fact]
    public void AGroupsStorageIsRolledBackWithItWhenAMemberDies()
    {
        using var home = new GroupHome("storage-group");
        string files = home.Dir["files"];
        Directory.CreateDirectory(files);
        int pid = home.Run("st", ["--storage", files, "--restart-on-failure"], TargetBinaries.Get("storage"), home.Dir.Path, files);
        var member = new GroupMember(pid, home.Home.GroupLog("st"));
        member.WaitForTicks(20);
        var taken = home.Amber("checkpoint", "--group", "st").ShouldSucceed();
        // log (and its hard link), sub/big, f<n-2..n>, current: 6; a freeze inside a tick may find f<n+1>
        // made and f<n-2> not yet removed (7), or current removed and not yet made again (5).
        Assert.Matches(@"storage [567] files", taken.Stderr);
        member.WaitForTicks(20);
        // Files written after the checkpoint: the group restarted from it must not see them.
        File.WriteAllText(Path.Combine(files, "stray"), "not part of the checkpoint");
        Spawner.Kill(pid, 9);
        GroupHome.WaitUntil(() => home.Table("st").Header.Restarts == 1 && member.IsRunning, "the group to be restarted");
        Assert.False(File.Exists(Path.Combine(files, "stray")));
        member.WaitForTicks(10); // its files agree with its memory, tick after tick
        File.WriteAllText(home.Dir["stop"], "");
        member.WaitForPass();
    }

    [Fact]
    public void AFullDiskFailsTheCheckpointCleanlyAndTheProgramRunsOn()
    {
        using var dir = new TestDir("storage-full");
        using var small = LoopFileSystem.Mount(dir["small.img"], dir["small"], megabytes: 16);
        using var target = TargetProcess.StartC("counter", dir, "64");
        target.WaitForTicks(3);
        var failed = AmberCli.Run("checkpoint", Pid(target), "--images", Path.Combine(dir["small"], "c1"), "--leave-running");
        failed.ShouldFail("No space left on device");
        Assert.Equal(["lost+found"], Directory.GetFileSystemEntries(dir["small"]).Select(Path.GetFileName));
        Assert.True(target.IsRunning);
        Assert.False(target.IsTraced);
        target.WaitForTicks(12); // with a full memory check every 10 ticks
        // Elsewhere the same program checkpoints and restores as ever.
        AmberCli.Run("checkpoint", Pid(target), "--images", dir["img"]).ShouldSucceed();
        target.ReapKilled();
        AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        target.Restored();
        target.StopAndVerify();
    }

    [Fact]
    public void OnAFileSystemWithReflinksBlocksAreSharedNotCopiedAndComeBackAfterTheFilesChanged()
    {
        using var dir = new TestDir("storage-reflink");
        using var btrfs = LoopFileSystem.Mount(dir["btrfs.img"], dir["btrfs"], megabytes: 256, type: "btrfs");
        string store = Path.Combine(btrfs.MountPoint, "store"), files = Path.Combine(btrfs.MountPoint, "files");
        using var target = StartStorage(dir, store, files);
        target.WaitForTicks(30);
        StopAtATick(target);
        int tick = target.LastTick();
        var run = AmberCli.Run("checkpoint", Pid(target), "--images", Path.Combine(store, "c1"), "--leave-running", "--storage", files).ShouldSucceed();
        // The blocks of the big file are shared with it, not copied (the small files' partial blocks are copied).
        var shared = System.Text.RegularExpressions.Regex.Match(run.Stderr, @"(\d+) blocks stored \((\d+) shared by reflink\)");
        Assert.True(shared.Success, run.Stderr);
        Assert.True(int.Parse(shared.Groups[2].Value, CultureInfo.InvariantCulture) >= tick, run.Stderr);
        // The program goes on rewriting those blocks: copy-on-write keeps the checkpoint's as they were.
        Spawner.Kill(target.Pid, Signals.SIGCONT);
        target.WaitForTicks(40);
        Spawner.Kill(target.Pid, 9);
        target.ReapKilled();
        AmberCli.Run("verify", Path.Combine(store, "c1")).ShouldSucceed();
        Vandalize(files);
        AmberCli.Run("restore", "--images", Path.Combine(store, "c1"), "--detach").ShouldSucceed();
        target.Restored();
        AssertFilesOfTick(files, tick);
        AssertCarriesOnFrom(target, tick);
        File.WriteAllText(dir["stop"], "");
        target.FinishAndVerify();
    }

    /// <summary>storage.c on an empty storage directory, with an empty store beside it.</summary>
    private static TargetProcess StartStorage(TestDir dir, string store, string files)
    {
        Directory.CreateDirectory(store);
        Directory.CreateDirectory(files);
        return TargetProcess.StartC("storage", dir, files);
    }

    private static string Pid(TargetProcess target) => target.Pid.ToString(CultureInfo.InvariantCulture);

    private static void StopAtATick(TargetProcess target)
    {
        Spawner.Kill(target.Pid, 10); // SIGUSR1
        GroupHome.WaitUntil(() => Amber.Kernel.Proc.ProcFs.ReadStat(target.Pid).State == 'T', $"process {target.Pid} to stop");
    }

    /// <summary>Lets a restored (stopped) program go on: its next ticks follow <paramref name="tick"/>, none reports a FAIL.</summary>
    private static void AssertCarriesOnFrom(TargetProcess target, int tick)
    {
        int lines = target.Lines().Count;
        Spawner.Kill(target.Pid, Signals.SIGCONT);
        target.WaitForLine(_ => target.Lines().Count >= lines + 5, "five ticks after the restore");
        var after = target.Lines().Skip(lines).Take(5).ToList();
        Assert.Equal(Enumerable.Range(tick + 1, 5).Select(t => $"tick {t}"), after);
    }

    /// <summary>Everything a rollback must undo: appended, truncated, removed, added, retyped, chmod'ed.</summary>
    private static void Vandalize(string files)
    {
        File.AppendAllText(Path.Combine(files, "log"), "garbage\n");
        using (var big = new FileStream(Path.Combine(files, "sub", "big"), FileMode.Open))
            big.SetLength(12345);
        File.WriteAllText(Path.Combine(files, "junk"), "junk");
        Directory.CreateDirectory(Path.Combine(files, "junkdir", "deeper"));
        File.Delete(Path.Combine(files, "current"));
        Directory.CreateDirectory(Path.Combine(files, "current"));
        foreach (var f in Directory.GetFiles(files, "f*"))
            File.Delete(f);
        File.SetUnixFileMode(Path.Combine(files, "sub"), UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
    }

    /// <summary>The files storage.c leaves after tick n, exactly.</summary>
    private static void AssertFilesOfTick(string files, int n)
    {
        var expected = new List<string> { "current", "log", "log.hard", "sub" };
        for (int i = Math.Max(1, n - 2); i <= n; i++)
            expected.Add($"f{i}");
        Assert.Equal(expected.Order(StringComparer.Ordinal), Directory.GetFileSystemEntries(files).Select(Path.GetFileName).Order(StringComparer.Ordinal));
        Assert.Equal(["big"], Directory.GetFileSystemEntries(Path.Combine(files, "sub")).Select(Path.GetFileName));

        var log = new StringBuilder();
        for (int i = 1; i <= n; i++)
            log.Append(CultureInfo.InvariantCulture, $"{i:D8}\n");
        Assert.Equal(log.ToString(), File.ReadAllText(Path.Combine(files, "log")));
        Assert.True(FileStat.TryGetNoFollow(Path.Combine(files, "log"), out var logStat));
        Assert.True(FileStat.TryGetNoFollow(Path.Combine(files, "log.hard"), out var hard));
        Assert.Equal(logStat.Inode, hard.Inode);
        Assert.Equal(0b110_100_000u, logStat.Permissions);
        Assert.True(FileStat.TryGetNoFollow(Path.Combine(files, "sub"), out var sub));
        Assert.Equal(0b111_101_000u, sub.Permissions);
        for (int i = Math.Max(1, n - 2); i <= n; i++)
            Assert.Equal($"{i}\n", File.ReadAllText(Path.Combine(files, $"f{i}")));
        Assert.Equal($"f{n}", new FileInfo(Path.Combine(files, "current")).LinkTarget);

        byte[] big = File.ReadAllBytes(Path.Combine(files, "sub", "big"));
        Assert.Equal(Blocks * Block, big.Length);
        var want = new byte[Block];
        for (int b = 0; b < Blocks; b++)
        {
            int s = n - ((((n - b) % Blocks) + Blocks) % Blocks);
            Array.Clear(want);
            if (s >= 1)
            {
                Array.Fill(want, (byte)(s & 0xff));
                BitConverter.TryWriteBytes(want, (long)s);
            }
            Assert.True(big.AsSpan(b * Block, Block).SequenceEqual(want), $"after tick {n}, block {b} of big is not that of tick {s}");
        }
    }
}
