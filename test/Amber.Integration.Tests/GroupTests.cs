using System.Globalization;
using System.Text.Json;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Table;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;

namespace Amber.Integration.Tests;

/// <summary>
/// Application groups under the coordinator: independent programs launched into one group (and one
/// attached later) saved at one barrier and brought back together; high availability; the schedule;
/// a coordinator killed in the middle of a checkpoint; who may use a group.
/// </summary>
public sealed class GroupTests
{
    private static string Duo => TargetBinaries.Get("duo");

    [Fact]
    public void TwoProgramsTalkingThroughAFifoAndASocketAndOneAttachedLaterComeBackTogether()
    {
        using var home = new GroupHome("group-duo");
        var (server, client) = StartDuo(home, "duo", []);
        client.WaitForTicks(3);
        CheckTableMatchesProc(home, "duo");

        // Both saved at one barrier and ended; both back with their PIDs, carrying on where they were.
        var saved = home.Amber("checkpoint", "--group", "duo", "--stop").ShouldSucceed();
        Assert.Matches(@"2 processes, .* barrier [0-9.]+ ms, frozen [0-9]+ ms", saved.Stderr);
        GroupHome.WaitUntil(() => !server.IsRunning && !client.IsRunning, "the group to end after checkpoint --stop");
        var restored = home.Amber("restore", "--group", "duo").ShouldSucceed();
        Assert.Equal([server.Pid, client.Pid], restored.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).Order());
        client.WaitForTicks(5);
        server.WaitForTicks(5);
        CheckTableMatchesProc(home, "duo");

        // A third, independent program, attached while running, is saved and restored with them.
        using var counterDir = new TestDir("group-counter");
        var counterProcess = TargetProcess.StartC("counter", counterDir, "8");
        counterProcess.WaitForLine(l => l == "READY", "READY");
        home.Amber("attach", "--group", "duo", counterProcess.Pid.ToString(CultureInfo.InvariantCulture)).ShouldSucceed();
        Assert.Contains(counterProcess.Pid, home.Members("duo"));
        counterProcess.WaitForTicks(2);
        home.Amber("checkpoint", "--group", "duo", "--stop").ShouldSucceed();
        counterProcess.ReapKilled(); // it was the test's child: its PID is free once collected
        counterProcess.MarkEnded();
        home.Amber("restore", "--group", "duo").ShouldSucceed();
        var counter = new GroupMember(counterProcess.Pid, counterProcess.LogPath);
        counter.WaitForTicks(3);
        client.WaitForTicks(3);
        Assert.Equal(3, home.Table("duo").Records.Count(r => r.IsTreeRoot));
        CheckTableMatchesProc(home, "duo");

        File.WriteAllText(Path.Combine(counterDir.Path, "stop"), "");
        File.WriteAllText(home.Dir["stop"], "");
        foreach (var member in new[] { counter, client, server })
            member.WaitForPass();
    }

    [Fact]
    public void WhenAMemberIsKilledTheWholeGroupComesBackFromItsLastCheckpoint()
    {
        using var home = new GroupHome("group-ha");
        var (server, client) = StartDuo(home, "ha", ["--restart-on-failure"]);
        client.WaitForTicks(3);
        home.Amber("checkpoint", "--group", "ha").ShouldSucceed();
        client.WaitForTicks(3);
        Spawner.Kill(client.Pid, 9);
        GroupHome.WaitUntil(() => home.Table("ha").Header.Restarts == 1 && server.IsRunning && client.IsRunning, "the group to be restarted");
        // Restored from the checkpoint: the sequence numbers on both sides carry on from that moment.
        client.WaitForTicks(5);
        server.WaitForTicks(5);
        var table = home.Table("ha");
        Assert.All(table.Records, r => Assert.Equal(1, r.Restarts));
        // amber ps shows it: GROUP PID NSPID PPID TREE STATE THR RESTARTS ...
        var rows = home.Amber("ps", "--group", "ha").ShouldSucceed().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Skip(1)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries)).ToList();
        Assert.Equal([server.Pid, client.Pid], rows.Select(f => int.Parse(f[1], CultureInfo.InvariantCulture)).Order());
        Assert.All(rows, f => Assert.Equal(f[1], f[2])); // no PID namespace of its own: the same PID inside
        Assert.All(rows, f => Assert.Equal("1", f[7]));
        File.WriteAllText(home.Dir["stop"], "");
        client.WaitForPass();
        server.WaitForPass();
    }

    [Fact]
    public void ScheduledCheckpointsAreIncrementalAndTheirChainsAreMergedByThemselves()
    {
        using var home = new GroupHome("group-every");
        var (_, client) = StartDuo(home, "every", ["--every", "300ms", "--merge-after", "3"]);
        List<string> Images() => [.. home.Amber("images", "--group", "every").ShouldSucceed().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)];
        // Every checkpoint after the first is incremental; once one refers to three earlier ones,
        // the coordinator folds the chain by itself (schedule and merges race: the listing is polled).
        var seen = new HashSet<string>();
        GroupHome.WaitUntil(() =>
        {
            if (!Directory.Exists(home.Home.DefaultStore("every")))
                return false;
            foreach (var line in Images())
            {
                Assert.Matches(@"^ckpt-\d{6}  \S+ \S+  (full|full \(merged\)|incremental after ckpt-\d{6}, uses ckpt-\d{6}( ckpt-\d{6})*)  [12] tree\(s\), [12] process\(es\)", line);
                seen.Add(line.Contains("incremental", StringComparison.Ordinal) ? "incremental" : line.Contains("merged", StringComparison.Ordinal) ? "merged" : "full");
            }
            return seen.Contains("incremental") && seen.Contains("merged");
        }, "incremental checkpoints, then a merged one");
        GroupHome.WaitUntil(() => !Images().Any(l => l.StartsWith("ckpt-000001 ", StringComparison.Ordinal)), "the first chain to be removed");
        Assert.EndsWith("(latest)", Images()[^1]);
        home.Amber("verify", "--group", "every").ShouldSucceed();
        client.WaitForTicks(3); // checkpoints never stopped it for long

        // The latest is restorable, whatever it refers to.
        home.Amber("checkpoint", "--group", "every", "--stop").ShouldSucceed();
        home.Amber("restore", "--group", "every").ShouldSucceed();
        client.WaitForTicks(5);
    }

    [Fact]
    public void AChainIsMergedOnceItsIncrementalCheckpointsHoldMoreThanTheSizeGiven()
    {
        using var home = new GroupHome("group-size");
        var usage = home.Amber("run", "--group", "size", "--merge-above", "12X", "--", "/bin/true");
        Assert.Equal(2, usage.ExitCode); // a usage error
        Assert.Equal("amber: --merge-above expects a size such as 512M or 2G, got '12X'", usage.Stderr.Trim());
        // Never by length here; by size, at the first incremental checkpoint (it holds more than 1 KiB).
        var (_, client) = StartDuo(home, "size", ["--merge-after", "1000", "--merge-above", "1K"]);
        List<string> Images() => [.. home.Amber("images", "--group", "size").ShouldSucceed().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries)];
        home.Amber("checkpoint", "--group", "size").ShouldSucceed();
        client.WaitForTicks(2);
        Assert.Matches(@"^ckpt-000001 .* full  ", Assert.Single(Images()));
        home.Amber("checkpoint", "--group", "size").ShouldSucceed();
        GroupHome.WaitUntil(() => Images() is [var only] && only.StartsWith("ckpt-000002 ", StringComparison.Ordinal) && only.Contains("full (merged)", StringComparison.Ordinal),
            "the chain to be merged into ckpt-000002 and ckpt-000001 removed");
        home.Amber("checkpoint", "--group", "size", "--stop").ShouldSucceed();
        home.Amber("restore", "--group", "size").ShouldSucceed();
        client.WaitForTicks(5);
    }

    [Fact]
    public void ACoordinatorKilledMidCheckpointLeavesNothingFrozenOrTracedAndIsFoundAgain()
    {
        using var home = new GroupHome("group-kill9");
        // This coordinator's workers pause two seconds with the group frozen, to be killed in the middle.
        var daemon = home.StartDaemon(new Dictionary<string, string> { ["AMBER_FAULT"] = "AfterFreeze:sleep=2000" });
        var (server, client) = StartDuo(home, "k9", []);
        client.WaitForTicks(3);

        var checkpoint = home.StartAmber("checkpoint", "--group", "k9");
        GroupHome.WaitUntil(() => client.IsTraced, "the worker to hold the group");
        Spawner.Kill(daemon.Pid, 9);
        daemon.Wait();
        Assert.NotEqual(0, checkpoint.Wait().ExitCode); // its coordinator died under it
        // The worker carries on alone: it finishes, and the group runs on, untraced.
        GroupHome.WaitUntil(() => !client.IsTraced && !server.IsTraced, "the group to be let go", TimeSpan.FromSeconds(15));
        client.WaitForTicks(5);

        // A new coordinator finds the group, its table and its store again.
        var again = home.StartDaemon();
        Assert.Single(home.Amber("images", "--group", "k9").ShouldSucceed().Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        home.Amber("checkpoint", "--group", "k9").ShouldSucceed();
        GroupHome.WaitUntil(() => home.Table("k9").Header.DaemonPid == again.Pid, "the table to be kept by the new coordinator");
        CheckTableMatchesProc(home, "k9");
        client.WaitForTicks(3);

        // A second coordinator for the same home is refused, and leaves the running one as it was
        // (it once took the control socket away with it).
        home.Amber("daemon").ShouldFail("another coordinator runs");
        Assert.True(File.Exists(home.Home.ControlSocket));
        home.Amber("checkpoint", "--group", "k9").ShouldSucceed();
    }

    [Fact]
    public void ADaemonThatDoubleForksStaysInItsGroupAndAnEarlierCheckpointCanBeChosen()
    {
        using var home = new GroupHome("group-daemon");
        // A classic daemon: the program forks, the child starts a session and forks again, and both
        // parents exit; the grandchild counts on, in the group's cgroup, the coordinator's child.
        string script = """
            import os, sys, time
            if os.fork(): sys.exit(0)
            os.setsid()
            if os.fork(): os._exit(0)
            log = open(sys.argv[1], "a", buffering=1)
            n = 0
            while True:
                n += 1
                log.write(f"tick {n}\n")
                time.sleep(0.02)
            """;
        File.WriteAllText(home.Dir["daemon.py"], script);
        int launched = home.Run("d", [], "/usr/bin/python3", home.Dir["daemon.py"], home.Dir["daemon.log"]);
        GroupHome.WaitUntil(() => home.Members("d").Count == 1 && !home.Members("d").Contains(launched), "the daemon to be alone in its group");
        var daemon = new GroupMember(home.Members("d")[0], home.Dir["daemon.log"]);
        GroupHome.WaitUntil(() => ProcFs.ReadStat(daemon.Pid).ParentPid == home.DaemonPid, "the daemon to be the coordinator's child");
        daemon.WaitForTicks(3);
        string first = home.Amber("checkpoint", "--group", "d").ShouldSucceed().LastStdoutLine;
        daemon.WaitForTicks(15);
        home.Amber("checkpoint", "--group", "d", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !daemon.IsRunning, "the daemon to end");
        int reached = daemon.LastTick();
        home.Amber("restore", "--group", "d", "--from", first).ShouldSucceed();
        Assert.True(daemon.IsRunning);
        // Back at the first checkpoint: the count goes on from there, well below where it had got to.
        int lines = daemon.Lines().Count;
        GroupHome.WaitUntil(() => daemon.Lines().Count > lines + 3, "ticks after the restore");
        var after = daemon.Lines().Skip(lines).Select(l => int.Parse(l.Split(' ')[1], CultureInfo.InvariantCulture)).ToList();
        Assert.True(after[0] < reached - 10, $"restored from {first}, the count should start again below {reached - 10}, not at {after[0]}");
        Assert.Equal(Enumerable.Range(after[0], after.Count), after);

        // Detached, it is no longer the group's: it keeps running outside it.
        home.Amber("detach", "--group", "d", daemon.Pid.ToString(CultureInfo.InvariantCulture)).ShouldSucceed();
        Assert.Empty(home.Members("d"));
        Assert.True(daemon.IsRunning);
        home.Amber("checkpoint", "--group", "d").ShouldFail("no running process");
        Spawner.Kill(daemon.Pid, 9);
    }

    [Fact]
    public void AmberRunOnAnExistingGroupAppliesWhatCanChangeAndRefusesWhatCannot()
    {
        using var home = new GroupHome("group-again");
        string data = home.Dir["data"], other = home.Dir["other"];
        Directory.CreateDirectory(data);
        Directory.CreateDirectory(other);
        home.Run("again", ["--storage", data], "/bin/sleep", "1000");
        GroupConfig Config() => JsonSerializer.Deserialize(File.ReadAllText(home.Home.GroupConfig("again")), GroupJson.Default.GroupConfig)!;

        var run = home.Amber("run", "--group", "again", "--every", "1h", "--deadline", "2s", "--merge-after", "3", "--merge-above", "1G",
            "--compress", "lz4", "--restart-on-failure", "--", "/bin/sleep", "1000").ShouldSucceed();
        Assert.Equal(
            ["group again: --every none -> 3600 s", "group again: --deadline 5 s -> 2 s", "group again: --merge-after 8 -> 3",
             "group again: --merge-above no limit -> 1073741824 bytes", "group again: --compress none -> lz4", "group again: --restart-on-failure off -> on"],
            run.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        var config = Config();
        Assert.Equal((3600.0, 2.0, 3, 1L << 30, "lz4", true),
            (config.EverySeconds, config.DeadlineSeconds, config.MergeAfter, config.MergeAboveBytes, config.Compress, config.RestartOnFailure));
        // Options not given leave the group as it is; the same store and storage given again are no change.
        home.Run("again", ["--images", home.Home.DefaultStore("again"), "--storage", data + "/"], "/bin/sleep", "1000");
        Assert.Equal(config.Roots.Count + 1, Config().Roots.Count);
        Assert.Equal((3600.0, 3, "lz4", true), (Config().EverySeconds, Config().MergeAfter, Config().Compress, Config().RestartOnFailure));
        home.Amber("run", "--group", "again", "--restart-on-failure", "false", "--", "/bin/sleep", "1000").ShouldSucceed();
        Assert.False(Config().RestartOnFailure);

        // The store and the storage are the group's checkpoints': refused, and nothing is launched.
        int members = home.Members("again").Count;
        home.Amber("run", "--group", "again", "--images", home.Dir["elsewhere"], "--", "/bin/sleep", "1000").ShouldFail(
            $"group again exists with store {home.Home.DefaultStore("again")}, not --images {home.Dir["elsewhere"]}; a group's store cannot change: "
            + "leave it out, or end the group first: amber stop --group again --remove (its checkpoints stay)");
        home.Amber("run", "--group", "again", "--storage", other, "--", "/bin/sleep", "1000").ShouldFail(
            $"group again exists with storage {data}, not --storage {other}; a group's storage cannot change");
        Assert.Equal(members, home.Members("again").Count);
        Assert.False(Directory.Exists(home.Dir["elsewhere"]));

        // The new schedule holds at once.
        home.Amber("run", "--group", "again", "--every", "200ms", "--", "/bin/sleep", "1000").ShouldSucceed();
        GroupHome.WaitUntil(() => home.Amber("images", "--group", "again").Stdout.Contains("ckpt-000001", StringComparison.Ordinal), "a scheduled checkpoint", TimeSpan.FromSeconds(20));
    }

    [Fact]
    public void AStoppedCoordinatorTakesItsPidFileWithIt()
    {
        using var home = new GroupHome("group-pidfile");
        var daemon = home.StartDaemon();
        string pidFile = Path.Combine(home.Home.RunDirectory, "amberd.pid");
        // A second coordinator, refused, leaves the first one's pid file as it is.
        home.Amber("daemon").ShouldFail("another coordinator runs");
        Assert.Equal(daemon.Pid, home.DaemonPid);
        home.Amber("daemon", "--stop").ShouldSucceed();
        Assert.Equal(0, daemon.Wait().ExitCode);
        Assert.False(File.Exists(pidFile), $"{pidFile} is still there");
    }

    [Fact]
    public void ACliKilledMidCheckpointHarmsNothing()
    {
        using var home = new GroupHome("group-cli9");
        home.StartDaemon(new Dictionary<string, string> { ["AMBER_FAULT"] = "AfterFreeze:sleep=1000" });
        var (server, client) = StartDuo(home, "c9", []);
        client.WaitForTicks(3);
        var checkpoint = home.StartAmber("checkpoint", "--group", "c9");
        GroupHome.WaitUntil(() => client.IsTraced, "the worker to hold the group");
        Spawner.Kill(checkpoint.Pid, 9);
        checkpoint.Wait();
        // The coordinator finishes the checkpoint all the same; the group runs on, untraced.
        GroupHome.WaitUntil(() => home.Amber("images", "--group", "c9").Stdout.Contains("ckpt-000001", StringComparison.Ordinal), "the checkpoint to be committed");
        GroupHome.WaitUntil(() => !client.IsTraced && !server.IsTraced, "the group to be let go");
        client.WaitForTicks(3);
        server.WaitForTicks(3);
    }

    [Fact]
    public void OnlyRootAndTheOwnerMayUseAGroup()
    {
        using var home = new GroupHome("group-owner");
        var (_, client) = StartDuo(home, "mine", []);
        client.WaitForTicks(2);
        // nobody (65534) asks for a checkpoint of root's group: refused by peer credentials.
        var run = ExternalProgram.Start("/usr/bin/setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", Repo.Amber, "checkpoint", "--group", "mine"], null, home.Environment).Wait();
        Assert.Equal(1, run.ExitCode);
        Assert.Contains("belongs to uid 0", run.Stderr);
        Assert.Empty(new Coordinator.Store.GroupStore(home.Home.DefaultStore("mine")).List());
    }

    [Fact]
    public void CheckpointsGoOnWhenAMemberIsReplacedAndFullCheckpointsFollowTrackedOnes()
    {
        using var home = new GroupHome("group-respawn");
        string wd = home.Dir.Path;
        var master = new GroupMember(home.Run("rs", [], TargetBinaries.Get("respawn"), wd), home.Home.GroupLog("rs"));
        master.WaitForLine("READY");
        master.WaitForTicks(3);
        home.Amber("checkpoint", "--group", "rs").ShouldSucceed();
        // Two full checkpoints in a row, while the writes are tracked: the second one used to find
        // the memory still registered by the first one's trackers (UFFDIO_REGISTER: EBUSY).
        for (int i = 0; i < 2; i++)
        {
            master.WaitForTicks(2);
            home.Amber("checkpoint", "--group", "rs", "--full").ShouldSucceed();
        }
        master.WaitForTicks(2);
        home.Amber("checkpoint", "--group", "rs").ShouldSucceed();

        // The worker is replaced (nginx -s reload): the next checkpoint goes on without the one that
        // exited, at the first try, and still reads only what the master wrote since.
        int workers = master.Lines().Count(l => l.StartsWith("worker ", StringComparison.Ordinal));
        Spawner.Kill(master.Pid, 10); // SIGUSR1
        GroupHome.WaitUntil(() => master.Lines().Count(l => l.StartsWith("worker ", StringComparison.Ordinal)) == workers + 1, "the worker to be replaced");
        master.WaitForTicks(2);
        var after = home.Amber("checkpoint", "--group", "rs").ShouldSucceed();
        var kept = System.Text.RegularExpressions.Regex.Match(after.Stderr, @"(\d+) kept");
        Assert.True(kept.Success && long.Parse(kept.Groups[1].Value, CultureInfo.InvariantCulture) > 1000, $"the master's pages should be kept from the earlier checkpoint: {after.Stderr}");
        master.WaitForTicks(2);
        home.Amber("checkpoint", "--group", "rs", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !master.IsRunning, "the group to end");
        home.Amber("restore", "--group", "rs").ShouldSucceed();
        master.WaitForTicks(12); // every page checked at least once
        File.WriteAllText(Path.Combine(wd, "stop"), "");
        master.WaitForPass();
    }

    /// <summary>
    /// A group's restore whose saved PID another program holds now says so after a second, naming the
    /// holder, instead of waiting out the 10 s a dying process is given: the group's own processes were
    /// all killed before, so a holder that is not on its way out will not let go (and a restore across
    /// nodes must say so within its peers' timeout). Nothing of the group is left running; once the PID is
    /// free again, the group comes back whole.
    /// </summary>
    [Fact]
    public void AGroupsRestoreWhoseSavedPidAnotherProgramHoldsSaysSoAfterASecond()
    {
        using var home = new GroupHome("group-pidheld");
        var (server, client) = StartDuo(home, "held", []);
        client.WaitForTicks(3);
        home.Amber("checkpoint", "--group", "held", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => !server.IsRunning && !client.IsRunning, "the group to end after checkpoint --stop");
        using (var holder = TargetProcess.Start(TargetBinaries.Get("holdpid"), [client.Pid.ToString(CultureInfo.InvariantCulture)], home.Dir.Path, logName: "holder.log"))
        {
            holder.WaitForLine(l => l == "READY", "READY");
            // (after 10 s, the whole wait, it would say "after 10 s")
            home.Amber("restore", "--group", "held").ShouldFail($"PID {client.Pid} is still taken after 1 s: it belongs to the running process 'holdpid'");
            Assert.Empty(home.Members("held"));
            Assert.False(server.IsRunning);
        }
        // (the holder's child, orphaned, comes to the test process, a subreaper, which collects it)
        GroupHome.WaitUntil(() => !ProcFs.Exists(client.Pid) || Spawner.TryReap(client.Pid, out _), "the holder's child to be gone");
        var restored = home.Amber("restore", "--group", "held").ShouldSucceed();
        Assert.Equal([server.Pid, client.Pid], restored.Stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).Order());
        client.WaitForTicks(3);
        server.WaitForTicks(3);
        File.WriteAllText(home.Dir["stop"], "");
        server.WaitForPass();
        client.WaitForPass();
    }

    /// <summary>The duo server and client, each launched into the group by amber run.</summary>
    internal static (GroupMember Server, GroupMember Client) StartDuo(GroupHome home, string group, string[] options)
    {
        string wd = home.Dir.Path;
        var server = new GroupMember(home.Run(group, options, Duo, "server", wd), Path.Combine(wd, "server.log"));
        server.WaitForLine("READY");
        var client = new GroupMember(home.Run(group, [], Duo, "client", wd), Path.Combine(wd, "client.log"));
        client.WaitForLine("READY");
        Assert.Equal([server.Pid, client.Pid], home.Members(group).Order());
        return (server, client);
    }

    /// <summary>The process table says what /proc says: the same processes, parents, trees and states.</summary>
    private static void CheckTableMatchesProc(GroupHome home, string group)
    {
        GroupHome.WaitUntil(() =>
        {
            var (header, records) = home.Table(group);
            var members = home.Members(group).Order().ToList();
            if (header.Group != group || records.Select(r => r.Pid).Order().SequenceEqual(members) is false)
                return false;
            return records.All(r =>
            {
                var stat = ProcFs.ReadStat(r.Pid);
                bool root = !members.Contains(stat.ParentPid);
                return r.ParentPid == stat.ParentPid && r.IsTreeRoot == root && (root ? r.Tree == r.Pid : r.Tree != r.Pid)
                    && r.State == ProcessState.Running && r.Command == ProcFs.ReadStatus(r.Pid).Name;
            });
        }, $"the process table of {group} to match /proc");
    }
}
