using System.Globalization;
using Amber.Kernel.Files;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;

namespace Amber.Integration.Tests;

/// <summary>
/// The coordinator runs as root and any local user may ask it for things: it acts for a user only
/// with that user's rights. Each test runs a real unprivileged user (nobody) against a coordinator of
/// its own, started by root.
/// </summary>
public sealed class SecurityTests
{
    [Fact]
    public void AUserMayOnlyUseAStoreAndStorageItMayWrite()
    {
        using var home = new GroupHome("sec-store");
        home.StartDaemon();
        // Root's store, with a checkpoint of root's in it.
        string rootStore = home.Dir["root-store"];
        home.Run("rootg", ["--images", rootStore], "/bin/sleep", "1000");
        home.Amber("checkpoint", "--group", "rootg").ShouldSucceed();
        string rootData = home.Dir["root-data"];
        Directory.CreateDirectory(rootData);

        Nobody.Amber(home, "run", "--group", "mine", "--images", rootStore, "--", "/bin/sleep", "1000")
            .ShouldFail($"uid 65534 may not write in {rootStore}: a group of uid 65534 may use only a store and storage it may write");
        Nobody.Amber(home, "run", "--group", "mine", "--images", Path.Combine(rootStore, "mine"), "--", "/bin/sleep", "1000")
            .ShouldFail($"uid 65534 may not make {Path.Combine(rootStore, "mine")}");
        string own = Nobody.Directory(home.Dir["nobody"]);
        Nobody.Amber(home, "run", "--group", "mine", "--images", Path.Combine(own, "store"), "--storage", rootData, "--", "/bin/sleep", "1000")
            .ShouldFail($"storage {rootData} belongs to uid 0");
        Assert.False(Directory.Exists(home.Home.GroupDirectory("mine")), "a refused group was made");

        // A store of its own: made by the user, where it may write.
        string store = Path.Combine(own, "store");
        Nobody.Amber(home, "run", "--group", "mine", "--images", store, "--", "/bin/sleep", "1000").ShouldSucceed();
        Assert.True(FileStat.TryGet(store, out var st) && st.Uid == Nobody.Uid);
        Nobody.Amber(home, "checkpoint", "--group", "mine").ShouldSucceed();

        // The user renames its store and puts a link to root's in its place: the coordinator sees it
        // is not the directory it was allowed, and the user may not write where it leads.
        Nobody.Run("/bin/mv", [store, store + ".old"]).ShouldSucceed();
        Nobody.Run("/bin/ln", ["-s", rootStore, store]).ShouldSucceed();
        string refused = $"group mine: its store {store} is not the directory it was when the group was made, and uid 65534 may not write in {store}; nothing is done";
        Nobody.Amber(home, "images", "--group", "mine").ShouldFail(refused);
        Nobody.Amber(home, "verify", "--group", "mine").ShouldFail(refused);
        Nobody.Amber(home, "stop", "--group", "mine").ShouldSucceed();
        Nobody.Amber(home, "restore", "--group", "mine", "--from", "ckpt-000001").ShouldFail(refused);
        // Its own again (made anew): fine again.
        Nobody.Run("/bin/rm", [store]).ShouldSucceed();
        Nobody.Run("/bin/mv", [store + ".old", store]).ShouldSucceed();
        Assert.Contains("ckpt-000001", Nobody.Amber(home, "images", "--group", "mine").ShouldSucceed().Stdout);
    }

    [Fact]
    public void AUserMayBringBackOnlyProcessesWithCredentialsItHolds()
    {
        using var home = new GroupHome("sec-restore");
        home.StartDaemon();
        string store = Path.Combine(Nobody.Directory(home.Dir["nobody"]), "store");
        // Its own process comes back, as itself.
        int pid = int.Parse(Nobody.Amber(home, "run", "--group", "mine", "--images", store, "--", "/bin/sleep", "1000").ShouldSucceed().LastStdoutLine, CultureInfo.InvariantCulture);
        Nobody.Amber(home, "checkpoint", "--group", "mine", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !ProcFs.Exists(pid), "the group to end");
        Nobody.Amber(home, "restore", "--group", "mine").ShouldSucceed();
        Assert.Equal([Nobody.Uid, Nobody.Uid, Nobody.Uid, Nobody.Uid], ProcFs.ReadStatus(pid).Uids);
        Nobody.Amber(home, "stop", "--group", "mine").ShouldSucceed();

        // Checkpoints of processes with credentials it does not hold, put in its store (it may write
        // there): root's, one in a group it is not in, one with capabilities. None comes back.
        (string Setpriv, string Refusal)[] others =
        [
            ("", "ran as uid 0 (real)"),
            ("--reuid=65534 --regid=65534 --groups=4", "ran with group 4, which uid 65534 is not in"),
            ("--reuid=65534 --regid=65534 --clear-groups --inh-caps=+net_raw --ambient-caps=+net_raw", "held inheritable capabilities 2000 that uid 65534 does not hold"),
        ];
        for (int i = 0; i < others.Length; i++)
        {
            string[] setpriv = others[i].Setpriv.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            int other = setpriv.Length == 0
                ? Spawner.Spawn(new SpawnOptions("/bin/sleep", ["1000"]))
                : Spawner.Spawn(new SpawnOptions("/usr/bin/setpriv", [.. setpriv, "/bin/sleep", "1000"]));
            GroupHome.WaitUntil(() => ProcFs.ReadStatus(other).Name == "sleep", "the process to run");
            string id = $"ckpt-00010{i}";
            AmberCli.Run("checkpoint", other.ToString(CultureInfo.InvariantCulture), "--images", Path.Combine(store, id)).ShouldSucceed();
            GroupHome.WaitUntil(() => Spawner.TryReap(other, out _), "the checkpointed process to be collected");
            Nobody.Amber(home, "restore", "--group", "mine", "--from", id)
                .ShouldFail($"process {other} ('sleep') {others[i].Refusal}; a restore for uid 65534 brings back only processes with credentials it holds");
            Assert.False(ProcFs.Exists(other), $"process {other} was brought back");
            // Root may bring it back.
            home.Amber("restore", "--group", "mine", "--from", id).ShouldSucceed();
            home.Amber("stop", "--group", "mine").ShouldSucceed();
        }
    }

    [Fact]
    public void AUserMayAttachOnlyProcessesWhollyItsOwn()
    {
        using var home = new GroupHome("sec-attach");
        home.StartDaemon();
        Nobody.Amber(home, "run", "--group", "mine", "--", "/bin/sleep", "1000").ShouldSucceed();
        // Its real uid is nobody's, its effective uid root's (as a set-user-id program's would be).
        int setuid = Spawner.Spawn(new SpawnOptions("/usr/bin/setpriv", ["--ruid=65534", "/bin/sleep", "1000"]));
        try
        {
            GroupHome.WaitUntil(() => ProcFs.ReadStatus(setuid).Name == "sleep", "the process to run");
            Nobody.Amber(home, "attach", "--group", "mine", setuid.ToString(CultureInfo.InvariantCulture)).ShouldFail(
                $"process {setuid} runs as uids 65534 0 0 0 (real, effective, saved, filesystem); a group of uid 65534 takes only processes wholly its own");
            Assert.DoesNotContain(setuid, home.Members("mine"));
        }
        finally
        {
            Spawner.Kill(setuid, 9);
            GroupHome.WaitUntil(() => Spawner.TryReap(setuid, out _), "the process to be collected");
        }
    }

    [Fact]
    public void TheCoordinatorsFilesAreNotWorldReadable()
    {
        using var home = new GroupHome("sec-files");
        // Anyone may put a link where a table will be (in /dev/shm, say): it is not followed.
        Directory.CreateDirectory(home.Home.ShmDirectory);
        File.WriteAllText(home.Dir["victim"], "unchanged");
        File.CreateSymbolicLink(home.Home.ProcessTable("rootg"), home.Dir["victim"]);
        home.Run("rootg", [], "/bin/sh", "-c", "echo root was here; exec sleep 1000");
        Assert.Equal("unchanged", File.ReadAllText(home.Dir["victim"]));
        int pid = int.Parse(Nobody.Amber(home, "run", "--group", "nb", "--", "/bin/sh", "-c", "echo nobody was here; exec sleep 1000").ShouldSucceed().LastStdoutLine, CultureInfo.InvariantCulture);

        string[] roots = [home.Home.GroupConfig("rootg"), home.Home.GroupConfig("nb"), home.Home.DaemonLog, home.Home.GroupLog("rootg"), home.Home.ProcessTable("rootg")];
        foreach (string file in roots)
        {
            Assert.True(FileStat.TryGetNoFollow(file, out var st) && st.IsRegular, $"{file} is not a file");
            Assert.True((st.Permissions & 0x7) == 0, $"{file} is mode {Convert.ToString(st.Permissions, 8)}");
            Assert.NotEqual(0, Nobody.Run("/bin/cat", [file]).ExitCode);
        }
        // What is the user's own it may read: its group's output, and its table (amber ps).
        GroupHome.WaitUntil(() => Nobody.Run("/bin/cat", [home.Home.GroupLog("nb")]).Stdout == "nobody was here\n", "nobody's output");
        var ps = Nobody.Amber(home, "ps").ShouldSucceed().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Equal(2, ps.Length); // the heading, and its process: not root's
        Assert.Matches($@"^nb +{pid} ", ps[1]);
        Nobody.Amber(home, "ps", "--group", "rootg").ShouldFail("permission denied");
    }

    [Fact]
    public void LeftoversOfInterruptedCheckpointsGoOnceNoWorkerWritesThem()
    {
        using var home = new GroupHome("sec-leftovers");
        var pause = new Dictionary<string, string> { ["AMBER_FAULT"] = "BeforeCommit:sleep=3000" };
        var first = home.StartDaemon(pause);
        string store = Path.Combine(Nobody.Directory(home.Dir["nobody"]), "store");
        Nobody.Amber(home, "run", "--group", "lo", "--images", store, "--", "/bin/sleep", "1000").ShouldSucceed();

        // A coordinator killed while its worker writes: the next one, started meanwhile, leaves what the
        // live worker writes alone, and the checkpoint is committed.
        var checkpoint = home.StartAmber("checkpoint", "--group", "lo");
        GroupHome.WaitUntil(() => Directory.GetDirectories(store, "ckpt-000001.tmp-*").Length == 1, "the worker to write");
        Spawner.Kill(first.Pid, 9);
        first.Wait();
        checkpoint.Wait();
        home.StartDaemon(pause);
        Assert.Single(Directory.GetDirectories(store, "ckpt-000001.tmp-*"));
        GroupHome.WaitUntil(() => Directory.Exists(Path.Combine(store, "ckpt-000001")), "the worker to commit", TimeSpan.FromSeconds(10));

        // A worker killed while it writes leaves its directory; so does a merge. The next checkpoint
        // of the group removes both, but not a directory of the user's own that looks the same.
        var writing = home.StartAmber("checkpoint", "--group", "lo");
        // Killed once the group runs again (its images are written after that, paused before the
        // commit): a tracer killed while it injects a call leaves its program broken.
        GroupHome.WaitUntil(() => Directory.GetDirectories(store, "ckpt-000002.tmp-*") is [var tmp] && Directory.GetFiles(tmp, "process-*").Length > 0, "the worker to write");
        int worker = Workers(home).Single();
        Spawner.Kill(worker, 9);
        Assert.NotEqual(0, writing.Wait().ExitCode);
        string torn = Assert.Single(Directory.GetDirectories(store, "ckpt-000002.tmp-*"));
        string merge = Path.Combine(store, "ckpt-000001.merge-0123456789ab");
        Directory.CreateDirectory(merge);
        File.WriteAllText(Path.Combine(merge, "manifest.img"), "");
        string users = Path.Combine(store, "mine.tmp-0123456789ab");
        Nobody.Run("/bin/mkdir", [users]).ShouldSucceed();
        home.Amber("checkpoint", "--group", "lo").ShouldSucceed();
        Assert.False(Directory.Exists(torn), $"{torn} is still there");
        Assert.False(Directory.Exists(merge), $"{merge} is still there");
        Assert.True(Directory.Exists(users));

        // A coordinator starting removes them too.
        Directory.CreateDirectory(Path.Combine(store, "ckpt-000009.tmp-0123456789ab"));
        home.Amber("daemon", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => home.DaemonPid == 0, "the coordinator to stop");
        home.StartDaemon();
        Assert.Equal(["ckpt-000001", "ckpt-000002", "mine.tmp-0123456789ab"], Directory.GetDirectories(store).Select(Path.GetFileName).Order(StringComparer.Ordinal));
    }

    /// <summary>The checkpoint workers of this home's coordinators now.</summary>
    private static List<int> Workers(GroupHome home) =>
        [.. Directory.GetDirectories("/proc").Select(Path.GetFileName).Where(d => d!.All(char.IsAsciiDigit)).Select(d => int.Parse(d!, CultureInfo.InvariantCulture))
            .Where(p =>
            {
                try
                {
                    string cmdline = File.ReadAllText($"/proc/{p}/cmdline");
                    return cmdline.Contains("\0checkpoint-group\0", StringComparison.Ordinal) && cmdline.Contains(home.Home.CgroupPrefix, StringComparison.Ordinal);
                }
                catch (IOException)
                {
                    return false;
                }
            })];
}
