using System.Globalization;
using System.Text.Json;

namespace Amber.Integration.Tests;

/// <summary>
/// Live migration between nodes (amber agent, amber migrate): nodes are network, PID and mount
/// namespaces of this machine (TestNodes), each with its agent, on a bridge of the test's. The group
/// is tcpstream's server on a macvlan of its own on the node's eth0 (its address moves with it), its
/// client in a namespace of its own, both checking every byte of both directions; it carries on across
/// every move, and after a failed one the group runs on at the source as if nothing happened.
/// </summary>
public sealed class MigrationTests
{
    /// <summary>The server's group on <paramref name="node"/>; the client connected and streaming.</summary>
    private static (TargetProcess Client, TestDir Work) StartServerAndClient(TestNodes nodes, TestNode node, string address)
    {
        var work = new TestDir("migrate-work");
        string server = TargetBinaries.Get("tcpstream");
        node.Amber("run", "--group", "srv", "--isolate", "pid,uts", "--net", "macvlan:eth0", "--address", address, "--", server, "server", work.Path, "--addr", address.Split('/')[0])
            .ShouldSucceed();
        GroupHome.WaitUntil(() => File.Exists(work["port"]), "the server to listen");
        var client = nodes.InClient(server, ["client", work.Path, "--addr", address.Split('/')[0]], work.Path, "client.log");
        TcpStreamLogs.WaitForReceived(work, 4 << 20);
        return (client, work);
    }

    [Fact]
    public void AServerGroupMovesToAnotherNodeAndBackStopAndPreCopyWithItsConnectionEveryByteChecked()
    {
        using var nodes = new TestNodes(["a", "b"]);
        string address = nodes.Address(100);
        var (client, work) = StartServerAndClient(nodes, nodes["a"], address);
        using (client)
        using (work)
        {
            // A to B, frozen throughout.
            var there = Migrate(nodes["a"], nodes["b"], "stop");
            Assert.Single(there.GetProperty("rounds").EnumerateArray());
            Assert.Equal("b", there.GetProperty("to").GetString());
            Assert.True(there.GetProperty("downtimeMs").GetDouble() > 0);
            Assert.Empty(nodes["a"].Members("srv"));
            Assert.Single(nodes["b"].Members("srv"));
            nodes["a"].Amber("images", "--group", "srv").ShouldFail("there is no group 'srv'");
            Assert.False(Directory.Exists(nodes["a"].Inside(nodes["a"].Home.DefaultStore("srv"))), "the group's checkpoints stayed on the node it left");
            TcpStreamLogs.WaitForReceived(work, TcpStreamLogs.Received(work) + (4 << 20));

            // And back, in rounds while it runs.
            var back = Migrate(nodes["b"], nodes["a"], "precopy");
            var rounds = back.GetProperty("rounds").EnumerateArray().ToList();
            Assert.True(rounds.Count >= 2, $"pre-copy took {rounds.Count} round(s)");
            Assert.Equal(back.GetProperty("bytes").GetInt64(), rounds.Sum(r => r.GetProperty("bytes").GetInt64()));
            Assert.Empty(nodes["b"].Members("srv"));
            Assert.Single(nodes["a"].Members("srv"));
            TcpStreamLogs.WaitForReceived(work, TcpStreamLogs.Received(work) + (4 << 20));
            Assert.Contains("group srv: migrated to node a: precopy", nodes["b"].Log);
            Assert.Contains("group srv: arrived from node b, running", nodes["a"].Log);

            Finish(work, client);
            GroupHome.WaitUntil(() => TcpStreamLogs.LastLine(work["server.log"]).StartsWith("PASS", StringComparison.Ordinal), $"the server's PASS (it says: {TcpStreamLogs.LastLine(work["server.log"])})");
        }
    }

    /// <summary>The destination's restore fails (fault injected there): the source resumes the group, the destination keeps nothing.</summary>
    [Fact]
    public void ARestoreThatFailsOnTheDestinationLeavesTheGroupRunningAtTheSourceAndNothingThere() =>
        AssertARestoreThatFailsThereLeavesItRunningHere("RestoreBeforeRelease", 101);

    /// <summary>
    /// The destination's restore fails after it has told the network that the group's address is there:
    /// while it takes its network away (paused by a fault), the client's packets that reach it meet the
    /// lock, or nothing, never a socket-less namespace that answers with a reset; the stream goes on at
    /// the source.
    /// </summary>
    [Fact]
    public void ARestoreThatFailsThereTakesItsNetworkAwayBeforeItsLockAndNoPeerIsReset() =>
        AssertARestoreThatFailsThereLeavesItRunningHere("RestoreBeforeRelease,RestoreUndo:sleep=2000", 109);

    /// <summary>A migration from a to b whose restore on b fails by <paramref name="fault"/>: the group runs on at a, its stream checked, and nothing of it is on b.</summary>
    private static void AssertARestoreThatFailsThereLeavesItRunningHere(string fault, int host)
    {
        using var nodes = FaultingOn("b", fault);
        string address = nodes.Address(host);
        var (client, work) = StartServerAndClient(nodes, nodes["a"], address);
        using (client)
        using (work)
        {
            int member = nodes["a"].Members("srv").Single();
            nodes["a"].Amber("migrate", "--group", "srv", "--to", nodes["b"].Listen).ShouldFail("injected fault at RestoreBeforeRelease");
            AssertItRunsOn(nodes["a"], member, work, 4 << 20);
            AssertNothingOf("srv", nodes["b"]);

            Finish(work, client);
        }
    }

    /// <summary>The destination node dies while the source waits for it (its restore paused by a fault): the group runs on at the source.</summary>
    [Fact]
    public void WhenTheDestinationNodeDiesMidMigrationTheGroupRunsOnAtTheSource()
    {
        using var nodes = FaultingOn("b", "RestoreBeforeRelease:sleep=4000");
        string address = nodes.Address(102);
        var (client, work) = StartServerAndClient(nodes, nodes["a"], address);
        using (client)
        using (work)
        {
            int member = nodes["a"].Members("srv").Single();
            var migrating = nodes["a"].Start("migrate", "--group", "srv", "--to", nodes["b"].Listen, "--mode", "stop");
            // B has made the group's processes (paused before their release): kill the node.
            GroupHome.WaitUntil(() => nodes["b"].Members("srv").Count > 0, "the destination to make the group's processes");
            nodes["b"].Kill();
            migrating.Wait(TimeSpan.FromMinutes(1)).ShouldFail("it runs on here");
            AssertItRunsOn(nodes["a"], member, work, 4 << 20);

            Finish(work, client);
        }
    }

    /// <summary>The destination's disk fills up while the checkpoint arrives: the group runs on at the source, nothing stays there.</summary>
    [Fact]
    public void ADestinationWhoseDiskIsFullLeavesTheGroupRunningAtTheSource()
    {
        // A home of its own on the destination, filled but for 48 KiB: the group's state fits, its
        // checkpoint (0.2-0.4 MiB) does not.
        using var nodes = new TestNodes(["a", "b"], homeSizes: new Dictionary<string, string> { ["b"] = "300k" });
        nodes.FillHome("b", 48 << 10);
        string address = nodes.Address(104);
        var (client, work) = StartServerAndClient(nodes, nodes["a"], address);
        using (client)
        using (work)
        {
            int member = nodes["a"].Members("srv").Single();
            nodes["a"].Amber("migrate", "--group", "srv", "--to", nodes["b"].Listen, "--mode", "stop").ShouldFail("No space left on device");
            AssertItRunsOn(nodes["a"], member, work, 4 << 20);
            AssertNothingOf("srv", nodes["b"]);

            Finish(work, client);
        }
    }

    /// <summary>
    /// The destination's disk fills up at the start of a checkpoint far bigger than the link's buffers
    /// (64 MiB of random pages): the source, still writing, learns why all the same (the destination
    /// drains the stream after saying it, where a close would reset the link), and the group runs on.
    /// </summary>
    [Fact]
    public void ADiskFullEarlyInABigCheckpointIsWhatTheSourceSays()
    {
        using var nodes = new TestNodes(["a", "b"], homeSizes: new Dictionary<string, string> { ["b"] = "300k" });
        nodes.FillHome("b", 48 << 10);
        using var work = new TestDir("migrate-full");
        string log = work["out.log"];
        nodes["a"].Amber("run", "--group", "big", "--isolate", "pid", "--", "/bin/sh", "-c", $"exec {TargetBinaries.Get("ratewriter")} {work.Path} 64 1 >> {log} 2>&1")
            .ShouldSucceed();
        int Ticks() => File.ReadLines(log).Where(l => l.StartsWith("tick ", StringComparison.Ordinal)).Select(l => int.Parse(l[5..], CultureInfo.InvariantCulture)).DefaultIfEmpty(-1).Max();
        GroupHome.WaitUntil(() => File.Exists(log) && Ticks() >= 1, "the writer's second second");
        var members = nodes["a"].Members("big");

        nodes["a"].Amber("migrate", "--group", "big", "--to", nodes["b"].Listen, "--mode", "stop").ShouldFail("No space left on device");
        Assert.Equal(members, nodes["a"].Members("big"));
        int ticks = Ticks();
        GroupHome.WaitUntil(() => Ticks() >= ticks + 2, "two more seconds of writing on node a");
        AssertNothingOf("big", nodes["b"]);

        File.WriteAllText(work["stop"], "");
        GroupHome.WaitUntil(() => File.ReadLines(log).Any(l => l.StartsWith("PASS", StringComparison.Ordinal) || l.StartsWith("FAIL", StringComparison.Ordinal)), "its check of every page");
        Assert.Contains(File.ReadLines(log), l => l.StartsWith("PASS", StringComparison.Ordinal));
    }

    /// <summary>An agent whose certificate another CA signed (even under a node's name) is refused in the handshake; the group runs on.</summary>
    [Fact]
    public void ANodeCertificateOfAnotherClusterIsRefusedBeforeAnythingMoves()
    {
        using var nodes = new TestNodes(["a"]);
        var stranger = nodes.Stranger("b", 30);
        string address = nodes.Address(103);
        var (client, work) = StartServerAndClient(nodes, nodes["a"], address);
        using (client)
        using (work)
        {
            int member = nodes["a"].Members("srv").Single();
            var refused = nodes["a"].Amber("migrate", "--group", "srv", "--to", stranger.Listen).ShouldFail("cannot migrate group srv");
            Assert.Contains("TLS handshake", refused.Stderr);
            AssertNothingOf("srv", stranger);
            GroupHome.WaitUntil(() => stranger.Log.Contains("refused a connection", StringComparison.Ordinal), "the stranger to refuse the connection too");
            AssertItRunsOn(nodes["a"], member, work, 1 << 20);

            Finish(work, client);
        }
    }

    [Fact]
    public void MigrateOptionsAreCheckedAndAPlainCoordinatorSaysItIsNoAgent()
    {
        using var home = new GroupHome("migrate-options");
        home.Amber("migrate", "--group", "g", "--to", "10.1.2.3").ShouldBeUsageError("--to 10.1.2.3: it is ADDR:PORT");
        home.Amber("migrate", "--group", "g", "--to", "fd00::1:7411").ShouldBeUsageError("an IPv6 address in brackets");
        home.Amber("migrate", "--group", "g", "--to", "10.1.2.3:7411", "--mode", "fast").ShouldBeUsageError("--mode fast");
        home.Amber("migrate", "--group", "g", "--to", "10.1.2.3:7411", "--max-downtime", "0").ShouldBeUsageError("--max-downtime 0");
        home.Amber("migrate", "--group", "g", "--to", "10.1.2.3:7411", "--on-no-convergence", "wait").ShouldBeUsageError("--on-no-convergence wait");
        home.Amber("migrate", "--group", "g").ShouldBeUsageError("--to ADDR:PORT (a node agent) or --to-file FILE|-");
        home.Amber("migrate", "--group", "g", "--to-file", "x", "--to", "10.1.2.3:7411").ShouldBeUsageError("--to-file goes alone");
        home.Amber("migrate", "--group", "g", "--to-file", "-", "--json").ShouldBeUsageError("no --json there");
        using var dir = new TestDir("migrate-options-run");
        home.Run("g", [], "/bin/sleep", "100");
        home.Amber("migrate", "--group", "g", "--to", "127.0.0.1:1").ShouldFail("is not a node agent");
        home.Amber("stop", "--group", "g", "--remove").ShouldSucceed();
    }

    [Fact]
    public void ClusterAndNodeCertificatesAreMadeOnceWithPrivateKeys()
    {
        using var dir = new TestDir("cluster-ca");
        string cluster = dir["cluster"];
        AmberCli.Run("cluster", "init", "--dir", cluster).ShouldSucceed();
        AmberCli.Run("cluster", "init", "--dir", cluster).ShouldFail("has a cluster CA already");
        Assert.Equal(dir["cluster/a.crt"], AmberCli.Run("node", "add", "a", "--cluster", cluster).ShouldSucceed().LastStdoutLine);
        AmberCli.Run("node", "add", "a", "--cluster", cluster).ShouldFail("node a has a certificate");
        AmberCli.Run("node", "add", "../x", "--cluster", cluster).ShouldBeUsageError("is not a node name");
        AmberCli.Run("node", "add", "b", "--cluster", dir["nowhere"]).ShouldFail("has no cluster CA");
        foreach (string key in new[] { "ca.key", "a.key" })
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(dir[$"cluster/{key}"]));
        // Its certificate is the cluster's: openssl verifies it against ca.crt.
        ExternalProgram.Run("/usr/bin/openssl", "verify", "-CAfile", dir["cluster/ca.crt"], dir["cluster/a.crt"]).ShouldSucceed();
        AmberCli.Run("agent", "--listen", "127.0.0.1:1", "--cluster", cluster, "--node", "b").ShouldFail("b.crt is missing");
    }

    /// <summary>
    /// The destination's restore is lazy: the group runs there before its memory is placed. This one
    /// drops, moves, forks with and has the kernel write into its memory every tick, checking as it
    /// goes, so the ticks right after the move do all that while its pages are still coming in.
    /// </summary>
    [Fact]
    public void AGroupRunsOnTheDestinationWhileItsMemoryIsPlacedEveryPageAsItWas()
    {
        using var nodes = new TestNodes(["a", "b"]);
        using var work = new TestDir("migrate-lazy");
        var big = TickingGroup.Big(nodes["a"], work, 128);
        var run = nodes["a"].Amber("migrate", "--group", "big", "--to", nodes["b"].Listen, "--json").ShouldSucceed();
        using (var report = JsonDocument.Parse(run.Stdout))
            Assert.True(report.RootElement.GetProperty("memoryInMs").GetDouble() > 0, run.Stdout);
        Assert.Empty(nodes["a"].Members("big"));
        big.RunsOn(nodes["b"], 20);
        big.Finish();
    }

    /// <summary>
    /// Post-copy, there and back: the group runs on the destination once its checkpoints are there
    /// without their page data, which follows while it runs; the connection carries on, every byte checked.
    /// </summary>
    [Fact]
    public void AServerGroupMovesToAnotherNodeAndBackInPostCopyWithItsConnectionEveryByteChecked()
    {
        using var nodes = new TestNodes(["a", "b"]);
        string address = nodes.Address(101);
        var (client, work) = StartServerAndClient(nodes, nodes["a"], address);
        using (client)
        using (work)
        {
            foreach (var (from, to) in new[] { ("a", "b"), ("b", "a") })
            {
                var moved = Migrate(nodes[from], nodes[to], "postcopy");
                var rounds = moved.GetProperty("rounds").EnumerateArray().ToList();
                Assert.Equal(2, rounds.Count); // the one kept at the source, the final one
                Assert.InRange(rounds[0].GetProperty("bytes").GetInt64(), 1, 1 << 20); // its metadata only, before the freeze
                Assert.True(moved.GetProperty("pagesAfterReleaseBytes").GetInt64() > 0, moved.ToString());
                Assert.Equal(moved.GetProperty("bytes").GetInt64(), rounds.Sum(r => r.GetProperty("bytes").GetInt64()) + moved.GetProperty("pagesAfterReleaseBytes").GetInt64());
                Assert.Empty(nodes[from].Members("srv"));
                Assert.Single(nodes[to].Members("srv"));
                AssertNothingOf("srv", nodes[from]);
                TcpStreamLogs.WaitForReceived(work, TcpStreamLogs.Received(work) + (4 << 20));
            }
            // The checkpoints that came without their pages are whole there now.
            nodes["a"].Amber("verify", "--group", "srv").ShouldSucceed();
            Finish(work, client);
            GroupHome.WaitUntil(() => TcpStreamLogs.LastLine(work["server.log"]).StartsWith("PASS", StringComparison.Ordinal), $"the server's PASS (it says: {TcpStreamLogs.LastLine(work["server.log"])})");
        }
    }

    /// <summary>
    /// Post-copy of a group that checks its memory every tick (drops, moves, forks, kernel writes):
    /// it runs on the destination while most of its 128 MiB is still on the source, each page it
    /// touches fetched first; its checkpoints there are whole once the last page is in.
    /// </summary>
    [Fact]
    public void APostCopyGroupRunsOnTheDestinationWhileItsPagesComeFromTheSource()
    {
        using var nodes = new TestNodes(["a", "b"]);
        using var work = new TestDir("migrate-postcopy");
        var big = TickingGroup.Big(nodes["a"], work, 128);
        var moved = Migrate(nodes["a"], nodes["b"], "postcopy", "big");
        Assert.True(moved.GetProperty("pagesAfterReleaseBytes").GetInt64() >= 100 << 20, moved.ToString());
        Assert.True(moved.GetProperty("rounds")[1].GetProperty("bytes").GetInt64() < 8 << 20, $"the final round sent page data: {moved}");
        Assert.True(moved.GetProperty("memoryInMs").GetDouble() > 0, moved.ToString());
        AssertNothingOf("big", nodes["a"]);
        big.RunsOn(nodes["b"], 20);
        nodes["b"].Amber("verify", "--group", "big").ShouldSucceed();
        big.Finish();
    }

    /// <summary>
    /// The destination makes the checkpoints that brought the group durable only once the group runs
    /// there (their fsyncs held 4 s by a fault): they are not in the downtime, and the source hears
    /// "running", and deletes its own copy, only after them.
    /// </summary>
    [Fact]
    public void TheDestinationMakesWhatArrivedDurableAfterTheReleaseAndOnlyThenSaysItRuns()
    {
        using var nodes = FaultingOn("b", "ReceivedDurable:sleep=4000");
        using var work = new TestDir("migrate-durable-after");
        var big = TickingGroup.Big(nodes["a"], work, 16);
        var moved = Migrate(nodes["a"], nodes["b"], "precopy", "big");
        Assert.True(moved.GetProperty("downtimeMs").GetDouble() < 4000, moved.ToString());
        Assert.True(moved.GetProperty("memoryInMs").GetDouble() >= 3500, moved.ToString());
        AssertNothingOf("big", nodes["a"]);
        big.RunsOn(nodes["b"], 3);
        nodes["b"].Amber("verify", "--group", "big").ShouldSucceed();
        big.Finish();
    }

    /// <summary>
    /// The checkpoints that brought the group cannot be made durable at the destination (a fault fails
    /// their fsyncs) once it runs there: it runs on there, and they are deleted, so that none is
    /// trusted after a crash; the migration says so, and the group's next checkpoint there is a full
    /// one, whole.
    /// </summary>
    [Fact]
    public void CheckpointsThatCannotBeMadeDurableAtTheDestinationAreDeletedAndTheGroupRunsOnThere()
    {
        using var nodes = FaultingOn("b", "ReceivedDurable");
        using var work = new TestDir("migrate-not-durable");
        var big = TickingGroup.Big(nodes["a"], work, 16);
        var run = nodes["a"].Amber("migrate", "--group", "big", "--to", nodes["b"].Listen, "--mode", "precopy").ShouldSucceed();
        Assert.Contains("migrated group big to node b: precopy", run.Stderr);
        Assert.Contains("could not be made durable on node b", run.Stderr);
        AssertNothingOf("big", nodes["a"]);
        big.RunsOn(nodes["b"], 3);
        string store = nodes["b"].Inside(nodes["b"].Home.DefaultStore("big"));
        Assert.False(Directory.Exists(store) && Directory.EnumerateDirectories(store).Any(), $"checkpoints stayed in {store}");
        nodes["b"].Amber("checkpoint", "--group", "big").ShouldSucceed();
        Assert.Single(Directory.EnumerateDirectories(store));
        nodes["b"].Amber("verify", "--group", "big").ShouldSucceed();
        big.RunsOn(nodes["b"], 2);
        big.Finish();
    }

    /// <summary>
    /// A post-copy's destination holds the group made for longer than the peer timeout before it is
    /// released (a fault makes its worker wait 7 s there, against 5 s): the source pushes its pages
    /// only once the group runs there, but the page link does not fall silent meanwhile, and the group
    /// moves, every page as it was.
    /// </summary>
    [Fact]
    public void APostCopyHeldLongerThanThePeerTimeoutBeforeItsReleaseStillMoves()
    {
        using var nodes = FaultingOn("b", "RestoreBeforeRelease:sleep=7000", peerTimeoutSeconds: 5);
        using var work = new TestDir("migrate-postcopy-held");
        var big = TickingGroup.Big(nodes["a"], work, 16);
        var moved = Migrate(nodes["a"], nodes["b"], "postcopy", "big");
        Assert.True(moved.GetProperty("downtimeMs").GetDouble() >= 7000, moved.ToString());
        AssertNothingOf("big", nodes["a"]);
        big.RunsOn(nodes["b"], 5);
        nodes["b"].Amber("verify", "--group", "big").ShouldSucceed();
        big.Finish();
    }

    /// <summary>
    /// The link cut while a post-copy's pages are on their way (the link slowed so that they take a
    /// while): the group cannot run on at the destination, which ends it and keeps nothing; the source
    /// says so, and its checkpoints bring the group back there, every page as it was.
    /// </summary>
    [Fact]
    public void APostCopyCutOffMidwayIsRestoredFromTheCheckpointsKeptAtTheSource()
    {
        using var nodes = new TestNodes(["a", "b"], peerTimeoutSeconds: 5);
        using var work = new TestDir("migrate-postcut");
        var big = TickingGroup.Big(nodes["a"], work, 384);
        nodes.Throttle("b", 200); // 384 MiB: some 16 s
        var migrating = nodes["a"].Start("migrate", "--group", "big", "--to", nodes["b"].Listen, "--mode", "postcopy");
        // Ended at the source (the commit) and made at the destination: released there, its pages on their way.
        GroupHome.WaitUntil(() => nodes["a"].Members("big").Count == 0 && nodes["b"].Members("big").Count >= 1, "the group to run on node b", TimeSpan.FromMinutes(1));
        nodes.SetLink("b", up: false);
        migrating.Wait(TimeSpan.FromMinutes(2)).ShouldFail("its checkpoints are kept here: amber restore --group big");
        GroupHome.WaitUntil(() => nodes["b"].Log.Contains("group big: migration from node a abandoned", StringComparison.Ordinal), "node b to give the group up", TimeSpan.FromMinutes(1));
        nodes.SetLink("b", up: true);
        AssertNothingOf("big", nodes["b"]);
        Assert.Empty(nodes["a"].Members("big"));
        nodes["a"].Amber("restore", "--group", "big").ShouldSucceed();
        big.RunsOn(nodes["a"], 10);
        big.Finish();
    }

    /// <summary>
    /// A group writing 10 MiB/s into 256 MiB (test/TestTargets/ratewriter.c: each page rewritten with
    /// its next generation) moved pre-copy: the rounds shrink, all of them send at most 1.3 times its
    /// memory, the downtime is reported, and on the destination every page is the generation it wrote last.
    /// </summary>
    [Fact]
    public void APreCopyOfAGroupWritingTenMiBPerSecondConvergesWithEveryPageAsWritten()
    {
        using var nodes = new TestNodes(["a", "b"]);
        using var work = new TestDir("migrate-rate");
        string log = work["out.log"];
        nodes["a"].Amber("run", "--group", "rate", "--isolate", "pid", "--", "/bin/sh", "-c", $"exec {TargetBinaries.Get("ratewriter")} {work.Path} 256 10 >> {log} 2>&1")
            .ShouldSucceed();
        int Ticks() => File.ReadLines(log).Where(l => l.StartsWith("tick ", StringComparison.Ordinal)).Select(l => int.Parse(l[5..])).DefaultIfEmpty(-1).Max();
        GroupHome.WaitUntil(() => File.Exists(log) && Ticks() >= 2, "the writer's third second");

        var moved = Migrate(nodes["a"], nodes["b"], "precopy", "rate");
        var rounds = moved.GetProperty("rounds").EnumerateArray().Select(r => r.GetProperty("bytes").GetInt64()).ToList();
        Assert.True(rounds.Count >= 2, $"pre-copy took {rounds.Count} round(s): {moved}");
        Assert.True(rounds[^1] < rounds[0] / 8, $"the rounds did not shrink: {string.Join(", ", rounds)}");
        Assert.True(moved.GetProperty("bytes").GetInt64() <= 256L * 1.3 * 1048576, $"sent more than 1.3 times the memory: {moved}");
        Assert.True(moved.GetProperty("downtimeMs").GetDouble() > 0, moved.ToString());
        Assert.Single(nodes["b"].Members("rate"));

        int there = Ticks();
        GroupHome.WaitUntil(() => Ticks() >= there + 2, "two seconds of writing on node b");
        File.WriteAllText(work["stop"], "");
        GroupHome.WaitUntil(() => File.ReadLines(log).Any(l => l.StartsWith("PASS", StringComparison.Ordinal) || l.StartsWith("FAIL", StringComparison.Ordinal)), "its check of every page");
        Assert.Contains(File.ReadLines(log), l => l.StartsWith("PASS", StringComparison.Ordinal));
    }

    /// <summary>
    /// PostgreSQL (postmaster, background processes, four backends in the middle of transactions,
    /// System V and shared memory) moved with its address while pgbench in the client namespace runs
    /// TPC-B-like transactions on four connections: pgbench sees a pause, ends with exit 0 and no
    /// failed transaction, and the data is all there. Both nodes see the data directory (one machine).
    /// </summary>
    [Fact]
    public void PostgresMovesWhilePgbenchRunsWithoutAFailedTransaction()
    {
        const string Bin = "/usr/lib/postgresql/15/bin";
        Assert.True(File.Exists($"{Bin}/pgbench"), "pgbench is not installed (apt-get install postgresql-15)");
        using var nodes = new TestNodes(["a", "b"]);
        using var dir = new TestDir("migrate-pg");
        File.SetUnixFileMode(dir.Path, (UnixFileMode)0x1ff);
        string data = dir["data"];
        ExternalProgram.Run("/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", $"{Bin}/initdb", "-D", data, "-A", "trust", "-U", "postgres")
            .ShouldSucceed();
        File.AppendAllText(Path.Join(data, "pg_hba.conf"), "host all all 10.215.0.0/16 trust\n"); // the client namespace's address
        string address = nodes.Address(103), ip = address.Split('/')[0];
        nodes["a"].Amber("run", "--group", "pg", "--isolate", "pid,uts", "--net", "macvlan:eth0", "--address", address, "--",
            "/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups", $"{Bin}/postgres", "-D", data, "-p", "5432", "-k", dir.Path,
            "-c", $"listen_addresses={ip}").ShouldSucceed();
        GroupHome.WaitUntil(() => File.Exists(Path.Join(data, "postmaster.pid")) && File.ReadAllText(Path.Join(data, "postmaster.pid")).Contains("ready", StringComparison.Ordinal),
            "postgres to accept connections", TimeSpan.FromSeconds(60));
        using (var init = nodes.InClient($"{Bin}/pgbench", ["-i", "-s", "2", "-h", ip, "-p", "5432", "-U", "postgres", "postgres"], dir.Path, "init.log"))
        {
            var initialized = Exited.Wait(init.Pid, TimeSpan.FromMinutes(3), "pgbench -i");
            init.MarkEnded();
            Assert.True(initialized.Exited && initialized.ExitCode == 0, $"pgbench -i: {initialized}: {string.Join(" | ", init.Lines().TakeLast(5))}");
        }
        using var pgbench = nodes.InClient($"{Bin}/pgbench", ["-h", ip, "-p", "5432", "-U", "postgres", "-c", "4", "-j", "2", "-T", "25", "-P", "1", "postgres"], dir.Path, "pgbench.log");
        pgbench.WaitForLine(l => l.StartsWith("progress: 3.0 s", StringComparison.Ordinal), "pgbench's progress at 3 s", TimeSpan.FromSeconds(60));

        Migrate(nodes["a"], nodes["b"], "precopy", "pg");
        Assert.Empty(nodes["a"].Members("pg"));
        Assert.True(nodes["b"].Members("pg").Count >= 8, "postgres should run on node b with its background processes and four backends");

        var status = Exited.Wait(pgbench.Pid, TimeSpan.FromSeconds(240), "pgbench");
        pgbench.MarkEnded();
        string output = File.ReadAllText(pgbench.LogPath);
        Assert.True(status.Exited && status.ExitCode == 0, $"pgbench ended with {status}: {output}");
        Assert.Contains("number of failed transactions: 0 ", output);
        Assert.DoesNotContain("error", output, StringComparison.OrdinalIgnoreCase);
        var progress = pgbench.Lines().Where(l => l.StartsWith("progress: ", StringComparison.Ordinal)).ToList();
        Assert.True(progress.Count(l => !l.Contains(" 0.0 tps", StringComparison.Ordinal)) >= 10, $"pgbench did little work: {string.Join(" | ", progress)}");
        using (var count = nodes.InClient("/usr/bin/psql", ["-h", ip, "-p", "5432", "-U", "postgres", "-tAc", "select count(*) from pgbench_accounts"], dir.Path, "count.log"))
        {
            var counted = Exited.Wait(count.Pid, TimeSpan.FromSeconds(60), "psql");
            count.MarkEnded();
            Assert.True(counted.Exited && counted.ExitCode == 0, $"psql: {counted}");
            Assert.Equal("200000", count.Lines().Last().Trim());
        }
        nodes["b"].Amber("stop", "--group", "pg").ShouldSucceed();
    }

    /// <summary>
    /// amber migrate --to-file - | amber receive --restore: the group goes through a pipe (as it would
    /// through ssh) from one node to the other, its address and its connection with it; the source
    /// keeps its checkpoints.
    /// </summary>
    [Fact]
    public void AServerGroupMovesThroughAPipeWithItsConnectionEveryByteChecked()
    {
        using var nodes = new TestNodes(["a", "b"]);
        string address = nodes.Address(102);
        var (client, work) = StartServerAndClient(nodes, nodes["a"], address);
        using (client)
        using (work)
        {
            var piped = ExternalProgram.Run("/bin/bash", "-c",
                $"set -o pipefail; {nodes["a"].CommandLine("migrate", "--group", "srv", "--to-file", "-")} | {nodes["b"].CommandLine("receive", "--restore")}").ShouldSucceed();
            Assert.Contains("group srv ended here, written to the stream", piped.Stderr);
            Assert.Contains("group srv received (", piped.Stderr);
            Assert.Empty(nodes["a"].Members("srv"));
            Assert.Single(nodes["b"].Members("srv"));
            Assert.Contains("ckpt-", nodes["a"].Amber("images", "--group", "srv").ShouldSucceed().Stdout); // kept at the source
            TcpStreamLogs.WaitForReceived(work, TcpStreamLogs.Received(work) + (4 << 20));
            Finish(work, client);
            GroupHome.WaitUntil(() => TcpStreamLogs.LastLine(work["server.log"]).StartsWith("PASS", StringComparison.Ordinal), $"the server's PASS (it says: {TcpStreamLogs.LastLine(work["server.log"])})");
        }
    }

    /// <summary>
    /// A group written to a file, the file cut short: the receiving node refuses it and keeps nothing
    /// of it; the source's checkpoints bring it back there, every page as it was. A file that exists
    /// is not overwritten, and a stream that is not one is refused.
    /// </summary>
    [Fact]
    public void AStreamCutShortLeavesNothingWhereItWasReceivedAndTheGroupComesBackAtTheSource()
    {
        using var nodes = new TestNodes(["a", "b"]);
        using var work = new TestDir("migrate-file");
        var big = TickingGroup.Big(nodes["a"], work, 64);
        File.WriteAllText(work["taken"], "mine, and no stream at all");
        ExternalProgram.Run("/bin/sh", "-c", nodes["a"].CommandLine("migrate", "--group", "big", "--to-file", work["taken"])).ShouldFail("it exists");
        Assert.Equal("mine, and no stream at all", File.ReadAllText(work["taken"]));
        big.RunsOn(nodes["a"], 2);

        ExternalProgram.Run("/bin/sh", "-c", nodes["a"].CommandLine("migrate", "--group", "big", "--to-file", work["big.stream"])).ShouldSucceed();
        Assert.Empty(nodes["a"].Members("big"));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(work["big.stream"]));
        using (var stream = File.OpenWrite(work["big.stream"]))
            stream.SetLength(stream.Length / 2);
        ExternalProgram.Run("/bin/sh", "-c", nodes["b"].CommandLine("receive", "--from-file", work["big.stream"], "--restore")).ShouldFail("cut off");
        AssertNothingOf("big", nodes["b"]);
        ExternalProgram.Run("/bin/sh", "-c", nodes["b"].CommandLine("receive", "--from-file", work["taken"])).ShouldFail("not a group's stream");

        nodes["a"].Amber("restore", "--group", "big").ShouldSucceed();
        big.RunsOn(nodes["a"], 10);
        big.Finish();
    }

    /// <summary>The link to the destination goes down while a round streams: the source gives up after its peer timeout and runs on; the destination, cut off, removes what it got.</summary>
    [Fact]
    public void ALinkCutMidTransferLeavesTheGroupRunningAtTheSourceAndNothingThere()
    {
        using var nodes = new TestNodes(["a", "b"], peerTimeoutSeconds: 5);
        using var work = new TestDir("migrate-cut");
        var (big, stays) = MigrateBigUntilItArrives(nodes, work);
        nodes.SetLink("b", up: false);
        stays();
        GroupHome.WaitUntil(() => nodes["b"].Log.Contains("group big: migration from node a abandoned", StringComparison.Ordinal), "node b to give the migration up", TimeSpan.FromMinutes(1));
        nodes.SetLink("b", up: true);
        AssertNothingOf("big", nodes["b"]);
        big.Finish();
    }

    /// <summary>The destination node dies (its agent and everything of it) while a round streams: the source runs on.</summary>
    [Fact]
    public void ADestinationKilledMidTransferLeavesTheGroupRunningAtTheSource()
    {
        using var nodes = new TestNodes(["a", "b"], peerTimeoutSeconds: 5);
        using var work = new TestDir("migrate-dead");
        var (big, stays) = MigrateBigUntilItArrives(nodes, work);
        nodes["b"].Kill();
        stays();
        // Nothing of it was committed there: at most a checkpoint that never finished arriving.
        string store = nodes["b"].Home.DefaultStore("big");
        Assert.False(Directory.Exists(store) && Directory.EnumerateDirectories(store).Any(d => !Path.GetFileName(d).Contains(".tmp-", StringComparison.Ordinal)),
            $"a checkpoint was committed on the dead node: {string.Join(", ", Directory.EnumerateDirectories(store))}");
        // Booted again, it forgets the group that never arrived, and what it had of it.
        var b = nodes.Restart("b");
        GroupHome.WaitUntil(() => b.Log.Contains("group big: forgotten, with what it got of it", StringComparison.Ordinal), "node b to forget the group");
        AssertNothingOf("big", b);
        big.Finish();
    }

    /// <summary>
    /// A group whose storage is declared shared (--shared-storage), and is: both nodes see the same
    /// directory. Its storage is left in place: no checkpoint of the migration holds it, and the program
    /// (test/TestTargets/storage.c, whose files say which tick it is at, checked every tick) carries on
    /// at the destination with the files as it left them.
    /// </summary>
    [Fact]
    public void SharedStorageIsLeftInPlace()
    {
        using var nodes = new TestNodes(["a", "b"]);
        using var work = new TestDir("migrate-shared");
        var files = TickingGroup.Storage(nodes["a"], work, shared: true);
        var moved = Migrate(nodes["a"], nodes["b"], "precopy", "st");
        Assert.Equal("shared", moved.GetProperty("storage").GetString());
        string store = nodes["b"].Inside(nodes["b"].Home.DefaultStore("st"));
        // The migration's are the first, one per round; b's own may follow already.
        int rounds = moved.GetProperty("rounds").GetArrayLength();
        var checkpoints = CheckpointsIn(store).Take(rounds).ToList();
        Assert.Equal(rounds, checkpoints.Count);
        Assert.All(checkpoints, c => Assert.False(HoldsStorage(c), $"{c} holds the storage"));
        Assert.Null(ExtendedAttribute(work["files"])); // the mark taken off again
        // None of those holds the files at the memory's cut: b takes one that does as soon as the group runs there.
        string held = "";
        GroupHome.WaitUntil(() => (held = CheckpointsIn(store).Except(checkpoints).FirstOrDefault(HoldsStorage) ?? "") != "",
            "a checkpoint on b that holds the storage");
        files.RunsOn(nodes["b"], 10);
        // Brought back (no --from), the group comes from that one, its files put back with its memory:
        // from the migration's own, its memory would find files some ticks ahead of it.
        nodes["b"].Amber("stop", "--group", "st").ShouldSucceed();
        var restored = nodes["b"].Amber("restore", "--group", "st").ShouldSucceed();
        Assert.Contains(Path.GetFileName(held), restored.Stdout + restored.Stderr);
        files.RunsOn(nodes["b"], 10);
        files.Finish();
    }

    /// <summary>
    /// The destination's restore worker, started as the migration begins, fails before it is told
    /// which checkpoint to restore (a fault injected there): another is started for the last round,
    /// and the group moves whole all the same.
    /// </summary>
    [Fact]
    public void ARestoreWorkerStartedAheadThatFailsIsReplaced()
    {
        using var nodes = FaultingOn("b", "RestoreAhead");
        using var work = new TestDir("migrate-ahead-failed");
        var big = TickingGroup.Big(nodes["a"], work, 16);
        Migrate(nodes["a"], nodes["b"], "precopy", "big");
        Assert.Empty(nodes["a"].Members("big"));
        big.RunsOn(nodes["b"], 3);
        Assert.Contains("the restore worker started ahead is not used (injected fault at RestoreAhead", nodes["b"].Log);
        big.Finish();
    }

    /// <summary>
    /// A migration with shared storage that fails leaves the group running at the source, whose latest
    /// checkpoints (the migration's) hold no storage. Brought back, the group comes from the latest one
    /// that does, taken before the migration: its files are put back to that same cut.
    /// </summary>
    [Fact]
    public void AGroupWithSharedStorageIsRestoredFromACheckpointThatHoldsIt()
    {
        using var nodes = FaultingOn("b", "RestoreBeforeRelease");
        using var work = new TestDir("migrate-shared-failed");
        var files = TickingGroup.Storage(nodes["a"], work, shared: true);
        string before = nodes["a"].Amber("checkpoint", "--group", "st").ShouldSucceed().Stdout.Trim();
        string store = nodes["a"].Inside(nodes["a"].Home.DefaultStore("st"));
        Assert.True(HoldsStorage(Path.Combine(store, before)), $"{before} does not hold the storage");
        nodes["a"].Amber("migrate", "--group", "st", "--to", nodes["b"].Listen).ShouldFail("injected fault at RestoreBeforeRelease");
        string latest = Directory.EnumerateDirectories(store).Select(Path.GetFileName).Order(StringComparer.Ordinal).Last()!;
        Assert.NotEqual(before, latest);
        Assert.False(HoldsStorage(Path.Combine(store, latest)), $"the migration's {latest} holds the storage");
        files.RunsOn(nodes["a"], 10);
        nodes["a"].Amber("stop", "--group", "st").ShouldSucceed();
        var restored = nodes["a"].Amber("restore", "--group", "st").ShouldSucceed();
        Assert.Contains(before, restored.Stdout + restored.Stderr);
        files.RunsOn(nodes["a"], 10);
        files.Finish();
    }

    /// <summary>
    /// Storage declared shared that is not: each node has a file system of its own at that path (a
    /// tmpfs mounted in its namespace). The destination does not see the mark, so the storage is sent
    /// in the migration's checkpoints, said in a warning, and rolled back there: the program carries on
    /// with every file as it left it.
    /// </summary>
    [Fact]
    public void StorageDeclaredSharedThatIsNotIsSentWithAWarning()
    {
        using var nodes = new TestNodes(["a", "b"]);
        using var work = new TestDir("migrate-unshared");
        Directory.CreateDirectory(work["files"]);
        foreach (var node in new[] { nodes["a"], nodes["b"] })
            ExternalProgram.Run("/usr/bin/nsenter", "-t", node.Pid.ToString(CultureInfo.InvariantCulture), "-m", "mount", "-t", "tmpfs", "-o", "size=64m", "none", work["files"]).ShouldSucceed();
        var files = TickingGroup.Storage(nodes["a"], work, shared: true);
        var run = nodes["a"].Amber("migrate", "--group", "st", "--to", nodes["b"].Listen, "--json").ShouldSucceed();
        Assert.Contains($"warning: the storage of group st is declared shared, but on node b {work["files"]} is not the same directory here: it is sent", run.Stderr);
        using var report = JsonDocument.Parse(run.Stdout);
        Assert.Equal("sent", report.RootElement.GetProperty("storage").GetString());
        // On the host, under the nodes' own file systems: nothing of the program's.
        Assert.Empty(Directory.EnumerateFileSystemEntries(work["files"]));
        files.RunsOn(nodes["b"], 10);
        files.Finish();
    }

    /// <summary>
    /// An encrypted group (amber run --encrypt KEYFILE) moves with its key, over the agents' TLS:
    /// pre-copy to node b, which keeps the key in the group's state directory (0600) and can verify and
    /// restore its checkpoints; post-copy back to node a, which keeps its own copy, while b deletes its
    /// copy with the checkpoints. The user's key file is never touched. A stream (--to-file), which
    /// cannot carry the key, is refused.
    /// </summary>
    [Fact]
    public void AnEncryptedGroupMovesWithItsKey()
    {
        using var nodes = new TestNodes(["a", "b"]);
        using var work = new TestDir("migrate-encrypted");
        string key = work["key"];
        AmberCli.Run("key", "new", key).ShouldSucceed();
        byte[] secret = File.ReadAllBytes(key);
        var big = TickingGroup.Big(nodes["a"], work, 16, "--encrypt", key);
        ExternalProgram.Run("/bin/sh", "-c", nodes["a"].CommandLine("migrate", "--group", "big", "--to-file", work["big.stream"]))
            .ShouldFail("a stream does not carry its key");
        Assert.False(File.Exists(work["big.stream"]));

        Migrate(nodes["a"], nodes["b"], "precopy", "big");
        string keptOnB = nodes["b"].Inside(Path.Combine(nodes["b"].Home.GroupDirectory("big"), "key"));
        Assert.Equal(secret, File.ReadAllBytes(keptOnB));
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(keptOnB));
        big.RunsOn(nodes["b"], 5);
        nodes["b"].Amber("checkpoint", "--group", "big").ShouldSucceed();
        nodes["b"].Amber("verify", "--group", "big").ShouldSucceed();
        // Those that came and the one taken there: encrypted, with that key.
        string storeOnB = nodes["b"].Inside(nodes["b"].Home.DefaultStore("big"));
        AmberCli.Run("verify", storeOnB).ShouldFail("give --key KEYFILE");
        AmberCli.Run("verify", storeOnB, "--key", key).ShouldSucceed();

        Migrate(nodes["b"], nodes["a"], "postcopy", "big");
        Assert.False(File.Exists(keptOnB), "node b kept the key of a group it no longer has");
        Assert.Equal(secret, File.ReadAllBytes(nodes["a"].Inside(Path.Combine(nodes["a"].Home.GroupDirectory("big"), "key"))));
        Assert.Equal(secret, File.ReadAllBytes(key));
        big.RunsOn(nodes["a"], 5);
        nodes["a"].Amber("verify", "--group", "big").ShouldSucceed();
        big.Finish();
    }

    /// <summary>The value of amber's mark on a directory (user.amber.shared), or null.</summary>
    private static string? ExtendedAttribute(string path)
    {
        var value = Amber.Kernel.Files.ExtendedAttributes.Get(path, "user.amber.shared");
        return value is null ? null : System.Text.Encoding.ASCII.GetString(value);
    }

    /// <summary>
    /// Checkpoints at the source that take longer than the destination waits in silence (a fault holds
    /// each one 6 s after the freeze, against a peer timeout of 5 s, as a big group's on a slow disk):
    /// the source says it is busy meanwhile, and the group moves, every page as it was.
    /// </summary>
    [Fact]
    public void CheckpointsLongerThanThePeerTimeoutDoNotEndTheMigration()
    {
        using var nodes = FaultingOn("a", "AfterFreeze:sleep=6000", peerTimeoutSeconds: 5);
        using var work = new TestDir("migrate-slow");
        var big = TickingGroup.Big(nodes["a"], work, 16);
        // A downtime of a minute asked: a second round fits it, then the final one (three checkpoints, each 6 s or more).
        var run = nodes["a"].Amber("migrate", "--group", "big", "--to", nodes["b"].Listen, "--max-downtime", "60000", "--json").ShouldSucceed();
        using var report = JsonDocument.Parse(run.Stdout);
        Assert.Equal(3, report.RootElement.GetProperty("rounds").GetArrayLength());
        Assert.Empty(nodes["a"].Members("big"));
        big.RunsOn(nodes["b"], 5);
        big.Finish();
    }

    /// <summary>
    /// The destination node dies during its restore (a fault makes its worker wait there: after
    /// making the processes, or at the hand-over, before saying "prepared"): the source runs on, and
    /// the node, booted again, forgets what it had of the group (the coordinator before it never got
    /// the commit).
    /// </summary>
    [Theory]
    [InlineData("RestoreAfterCreate")]
    [InlineData("RestoreBeforeRelease")]
    public void ADestinationKilledDuringItsRestoreLeavesTheGroupRunningAtTheSourceAndNothingThereOnceItIsBack(string step)
    {
        using var nodes = FaultingOn("b", $"{step}:sleep=60000", peerTimeoutSeconds: 5);
        using var work = new TestDir("migrate-killed");
        var big = TickingGroup.Big(nodes["a"], work, 16);
        int member = nodes["a"].Members("big").Single();
        var migrating = nodes["a"].Start("migrate", "--group", "big", "--to", nodes["b"].Listen, "--mode", "stop");
        GroupHome.WaitUntil(() => nodes["b"].Members("big").Count > 0, "the group's processes to be made on node b", TimeSpan.FromMinutes(1));
        Thread.Sleep(1000); // at the step, waiting there
        nodes["b"].Kill();
        migrating.Wait(TimeSpan.FromMinutes(2)).ShouldFail("it runs on here");
        Assert.Contains(member, nodes["a"].Members("big")); // (with a child it forked for a check, now and then)
        big.RunsOn(nodes["a"], 5);

        var b = nodes.Restart("b");
        GroupHome.WaitUntil(() => b.Log.Contains("group big: forgotten, with what it got of it", StringComparison.Ordinal), "node b to forget the group");
        AssertNothingOf("big", b);
        big.Finish();
    }

    /// <summary>
    /// The source's last checkpoint is handed over before it is durable and in place (the disk is not
    /// waited for while the group is frozen), and committed after the destination has it ready, before
    /// any process ends here: if that commit fails, the group runs on here as it was (same process,
    /// every page), nothing of the failed checkpoint stays here, and the destination keeps nothing.
    /// </summary>
    [Fact]
    public void AFinalCheckpointThatCannotBeCommittedAtTheSourceLeavesTheGroupRunningThere()
    {
        using var nodes = FaultingOn("a", "SealedCommit");
        using var work = new TestDir("migrate-sealed");
        var big = TickingGroup.Big(nodes["a"], work, 16);
        int member = nodes["a"].Members("big").Single();
        nodes["a"].Amber("checkpoint", "--group", "big").ShouldSucceed();
        string before = nodes["a"].Amber("images", "--group", "big").ShouldSucceed().Stdout;
        nodes["a"].Amber("migrate", "--group", "big", "--to", nodes["b"].Listen, "--mode", "stop").ShouldFail("injected fault at SealedCommit");
        Assert.Contains(member, nodes["a"].Members("big"));
        big.RunsOn(nodes["a"], 3);
        // The failed checkpoint is nowhere: not listed, no temporary directory left.
        Assert.Equal(before, nodes["a"].Amber("images", "--group", "big").ShouldSucceed().Stdout);
        string store = nodes["a"].Inside(nodes["a"].Home.DefaultStore("big"));
        Assert.Equal(["ckpt-000001"], Directory.EnumerateDirectories(store).Select(Path.GetFileName));
        AssertNothingOf("big", nodes["b"]);
        nodes["a"].Amber("verify", "--group", "big").ShouldSucceed();
        big.Finish();
    }

    /// <summary>
    /// redis-server (Debian's) moves with its address while a client in another namespace pipelines
    /// INCR on one connection, checking every reply: no reset, no reply lost or repeated, and the
    /// counter there is every INCR acknowledged.
    /// </summary>
    [Fact]
    public void RedisMovesWithItsClientsConnectionAndEveryIncrement()
    {
        Assert.True(File.Exists("/usr/bin/redis-server"), "redis-server is not installed (apt-get install redis-server; .ci/run does it)");
        using var nodes = new TestNodes(["a", "b"]);
        using var work = new TestDir("migrate-redis");
        string address = nodes.Address(105), ip = address.Split('/')[0];
        nodes["a"].Amber("run", "--group", "redis", "--isolate", "pid,uts", "--net", "macvlan:eth0", "--address", address, "--",
            "/usr/bin/redis-server", "--bind", ip, "--protected-mode", "no", "--port", "6379", "--save", "", "--appendonly", "no", "--dir", work.Path, "--logfile", work["redis.log"]).ShouldSucceed();
        File.WriteAllText(work["incr.py"], IncrClient);
        GroupHome.WaitUntil(() => File.Exists(work["redis.log"]) && File.ReadAllText(work["redis.log"]).Contains("Ready to accept connections", StringComparison.Ordinal), "redis to listen");
        using var client = nodes.InClient("/usr/bin/python3", [work["incr.py"], ip, "6379", work.Path], work.Path, "incr.log");
        long Acked() => client.Lines().Where(l => l.StartsWith("acked ", StringComparison.Ordinal)).Select(l => long.Parse(l[6..])).DefaultIfEmpty(0).Max();
        bool Ended() => !client.IsRunning || client.Lines().Any(l => l.StartsWith("FAIL", StringComparison.Ordinal));
        string Said() => $"the client says: {string.Join(" | ", client.Lines().TakeLast(3))}";
        GroupHome.WaitUntil(() => Acked() >= 20_000 || Ended(), "20 000 INCRs acknowledged on node a");
        Assert.False(Ended(), Said());

        Migrate(nodes["a"], nodes["b"], "precopy", "redis");
        Assert.Empty(nodes["a"].Members("redis"));
        Assert.Single(nodes["b"].Members("redis"));
        long there = Acked();
        GroupHome.WaitUntil(() => Acked() >= there + 20_000 || Ended(), "20 000 more INCRs on node b");
        Assert.False(Ended(), Said());

        File.WriteAllText(work["stop"], "");
        client.FinishAndVerify(); // its last check: GET is every INCR it saw acknowledged
    }

    /// <summary>
    /// Two programs of one group talking through a FIFO and a unix socket move together, every message
    /// in sequence. In a PID namespace of the group's own (their PIDs must be free on the destination)
    /// under a shell that waits for both: the namespace's first process ending would kill the others.
    /// </summary>
    [Fact]
    public void TwoProgramsSharingAFifoAndAUnixSocketMoveTogether()
    {
        using var nodes = new TestNodes(["a", "b"]);
        using var work = new TestDir("migrate-duo");
        string duo = TargetBinaries.Get("duo");
        nodes["a"].Amber("run", "--group", "duo", "--isolate", "pid", "--", "/bin/sh", "-c",
            $"{duo} server {work.Path} & while [ ! -S {work["sock"]} ]; do sleep 0.05; done; {duo} client {work.Path} & wait").ShouldSucceed();
        var server = new GroupMember(0, work["server.log"]);
        var client = new GroupMember(0, work["client.log"]);
        GroupHome.WaitUntil(() => File.Exists(work["client.log"]), "the client");
        client.WaitForTicks(5);

        Migrate(nodes["a"], nodes["b"], "precopy", "duo");
        Assert.Empty(nodes["a"].Members("duo"));
        Assert.Equal(3, nodes["b"].Members("duo").Count);
        client.WaitForTicks(10);
        server.WaitForTicks(10);

        File.WriteAllText(work["stop"], "");
        client.WaitForPass();
        server.WaitForPass();
    }

    /// <summary>
    /// One connection: INCR ctr pipelined 32 at a time with 64 in flight, each reply the one before
    /// plus one; "acked N" every 1 024; on the work directory's stop file, the replies still due, then
    /// GET ctr must be the last one: PASS N. A reset, an end of file or a wrong reply: FAIL.
    /// </summary>
    private const string IncrClient = """
        import os, socket, sys
        host, port, wd = sys.argv[1], int(sys.argv[2]), sys.argv[3]
        s = socket.create_connection((host, port), timeout=120)
        f = s.makefile("rb")
        batch = b"*2\r\n$4\r\nINCR\r\n$3\r\nctr\r\n" * 32
        try:
            s.sendall(batch * 2)
            sent, expected = 64, 1
            while expected <= sent:
                line = f.readline()
                if line != b":%d\r\n" % expected:
                    print(f"FAIL reply {expected} was {line!r}", flush=True)
                    sys.exit(1)
                if expected % 1024 == 0:
                    print(f"acked {expected}", flush=True)
                if expected % 32 == 0 and sent < 20_000_000 and not os.path.exists(os.path.join(wd, "stop")):
                    s.sendall(batch)
                    sent += 32
                expected += 1
            s.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nctr\r\n")
            f.readline()
            value = int(f.readline())
        except OSError as e:
            print(f"FAIL after {expected - 1} replies: {e!r}", flush=True)
            sys.exit(1)
        if value != sent:
            print(f"FAIL GET ctr is {value}, {sent} were acknowledged", flush=True)
            sys.exit(1)
        print(f"PASS {sent}", flush=True)
        """;

    /// <summary>
    /// A big group (384 MiB) on node a, migrating to node b, returned as soon as its first checkpoint
    /// is arriving there (b's store holds one not yet committed), with the check that the migration
    /// then fails and the group runs on at a, the same process, every page checked.
    /// </summary>
    private static (TickingGroup Big, Action Stays) MigrateBigUntilItArrives(TestNodes nodes, TestDir work)
    {
        var big = TickingGroup.Big(nodes["a"], work, 384);
        int member = nodes["a"].Members("big").Single();
        var migrating = nodes["a"].Start("migrate", "--group", "big", "--to", nodes["b"].Listen);
        string store = nodes["b"].Inside(nodes["b"].Home.DefaultStore("big"));
        // Should the migration end first, or never send, the failure says what the CLI and the nodes said.
        string Said() => $"\nnode a: {Tail(nodes["a"].Log)}\nnode b: {Tail(nodes["b"].Log)}";
        GroupHome.WaitUntil(() =>
        {
            if (migrating.Ended() is { } ended)
                Assert.Fail($"amber migrate ended (exit {ended.ExitCode}) before a checkpoint arrived on node b: {ended.Stderr.Trim()}{Said()}");
            return Directory.Exists(store) && Directory.EnumerateDirectories(store).Any(d => Path.GetFileName(d).Contains(".tmp-", StringComparison.Ordinal));
        }, "a checkpoint of big to arrive on node b", TimeSpan.FromMinutes(1), Said);
        return (big, () =>
        {
            migrating.Wait(TimeSpan.FromMinutes(2)).ShouldFail("it runs on here");
            Assert.Contains(member, nodes["a"].Members("big")); // (with a child it forked for a check, now and then)
            big.RunsOn(nodes["a"], 10);
        });
    }

    /// <summary>Whether a checkpoint directory holds a storage checkpoint.</summary>
    private static bool HoldsStorage(string checkpoint) => File.Exists(Path.Combine(checkpoint, "storage.img"));

    /// <summary>The checkpoints committed in a store, oldest first (not one being written).</summary>
    private static IEnumerable<string> CheckpointsIn(string store) =>
        Directory.EnumerateDirectories(store).Where(c => !Path.GetFileName(c).Contains('.', StringComparison.Ordinal) && File.Exists(Path.Combine(c, "manifest.img"))).Order(StringComparer.Ordinal);

    /// <summary>The last lines of a log, for a failure's message.</summary>
    private static string Tail(string log) => string.Join("\n  ", log.TrimEnd('\n').Split('\n').TakeLast(12));

    /// <summary>
    /// A group of a test target that says "tick N" as it goes, "FAIL ..." at the first thing wrong it
    /// finds, and "PASS N" after its final check once <c>work/stop</c> exists, all in <c>work/out.log</c>.
    /// </summary>
    private sealed class TickingGroup
    {
        private readonly TestDir _work;
        private readonly string _name;

        private TickingGroup(TestDir work, string name)
        {
            _work = work;
            _name = name;
        }

        private string Log => _work["out.log"];

        /// <summary>
        /// "big", of the lazy target (test/TestTargets/lazy.c) with <paramref name="mib"/> MiB of memory it
        /// checks: every tick it drops, moves, forks with and has the kernel write into its memory.
        /// </summary>
        public static TickingGroup Big(TestNode node, TestDir work, int mib, params string[] options) =>
            Start(node, work, "big", $"{TargetBinaries.Get("lazy")} {work.Path} {mib}", options);

        /// <summary>
        /// "st", of test/TestTargets/storage.c, its files in <c>work/files</c> (its --storage): every tick
        /// it changes them and checks that they are what its ticks so far leave.
        /// </summary>
        public static TickingGroup Storage(TestNode node, TestDir work, bool shared)
        {
            Directory.CreateDirectory(work["files"]);
            return Start(node, work, "st", $"{TargetBinaries.Get("storage")} {work.Path} {work["files"]}",
                ["--storage", work["files"], .. shared ? new[] { "--shared-storage" } : []]);
        }

        private static TickingGroup Start(TestNode node, TestDir work, string name, string command, string[] options)
        {
            var group = new TickingGroup(work, name);
            node.Amber(["run", "--group", name, "--isolate", "pid", .. options, "--", "/bin/sh", "-c", $"exec {command} >> {group.Log} 2>&1"]).ShouldSucceed();
            GroupHome.WaitUntil(() => group.Ticks() >= 5 || group.Said("FAIL"), $"5 ticks on node {node.Name}");
            Assert.False(group.Said("FAIL"), group.End);
            return group;
        }

        private int Ticks() => File.Exists(Log) ? File.ReadLines(Log).Where(l => l.StartsWith("tick ", StringComparison.Ordinal)).Select(l => int.Parse(l[5..], CultureInfo.InvariantCulture)).DefaultIfEmpty(0).Max() : 0;

        private bool Said(string start) => File.Exists(Log) && File.ReadLines(Log).Any(l => l.StartsWith(start, StringComparison.Ordinal));

        private string End => string.Join(" | ", File.ReadLines(Log).TakeLast(3));

        /// <summary>It runs on <paramref name="node"/>, <paramref name="ticks"/> more ticks there, each checked.</summary>
        public void RunsOn(TestNode node, int ticks)
        {
            Assert.True(node.Members(_name).Count >= 1, $"it does not run on node {node.Name}; its log ends with: {End}");
            int from = Ticks();
            GroupHome.WaitUntil(() => Ticks() >= from + ticks || Said("FAIL"), $"{ticks} ticks on node {node.Name}");
            Assert.False(Said("FAIL"), End);
        }

        /// <summary>Its final check (PASS): every page of its memory, or every file, as it should be.</summary>
        public void Finish()
        {
            File.WriteAllText(_work["stop"], "");
            GroupHome.WaitUntil(() => Said("PASS") || Said("FAIL"), "its final check");
            Assert.False(Said("FAIL"), End);
        }
    }

    /// <summary>Nodes a and b, <paramref name="node"/>'s agent and workers failing or pausing at <paramref name="fault"/> (AMBER_FAULT).</summary>
    private static TestNodes FaultingOn(string node, string fault, int? peerTimeoutSeconds = null) =>
        new(["a", "b"], new Dictionary<string, IReadOnlyDictionary<string, string>> { [node] = new Dictionary<string, string> { ["AMBER_FAULT"] = fault } },
            peerTimeoutSeconds: peerTimeoutSeconds);

    private static JsonElement Migrate(TestNode from, TestNode to, string mode, string group = "srv")
    {
        var run = from.Amber("migrate", "--group", group, "--to", to.Listen, "--mode", mode, "--json").ShouldSucceed();
        Assert.Contains($"migrated group {group} to node {to.Name}: {mode}", run.Stderr);
        using var report = JsonDocument.Parse(run.Stdout);
        return report.RootElement.Clone();
    }

    /// <summary>The group runs on at <paramref name="source"/> as it was: the same process, its stream going on (<paramref name="more"/> bytes more, every one checked).</summary>
    private static void AssertItRunsOn(TestNode source, int member, TestDir work, long more)
    {
        Assert.Equal([member], source.Members("srv"));
        TcpStreamLogs.WaitForReceived(work, TcpStreamLogs.Received(work) + more);
    }

    /// <summary>Both ends end the stream and check all they exchanged: the client's PASS.</summary>
    private static void Finish(TestDir work, TargetProcess client)
    {
        File.WriteAllText(work["stop"], "");
        client.FinishAndVerify();
    }

    /// <summary>Nothing of the group on <paramref name="node"/>: no group, no process, no checkpoint.</summary>
    private static void AssertNothingOf(string group, TestNode node)
    {
        if (node.IsRunning)
            node.Amber("images", "--group", group).ShouldFail($"there is no group '{group}'");
        Assert.Empty(node.Members(group));
        string store = node.IsRunning ? node.Inside(node.Home.DefaultStore(group)) : node.Home.DefaultStore(group);
        Assert.False(Directory.Exists(store) && Directory.EnumerateFileSystemEntries(store).Any(), $"checkpoints of {group} stayed on node {node.Name}: {store}");
    }

}
