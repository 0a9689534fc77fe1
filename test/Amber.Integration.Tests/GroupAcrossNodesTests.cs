using System.Text.Json;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>
/// A group whose members run on several nodes (the same group name on each node's agent, the nodes
/// registered in a real etcd): tcpstream's server on node a (an address of its own) and its client on
/// node b, one connection between them, every byte of both directions checked. A checkpoint of the
/// group is one barrier across the nodes, led by the node that holds the group's leadership in the
/// store, and recorded in the store's catalog only when every node's part is committed.
/// </summary>
public sealed class GroupAcrossNodesTests
{
    private const int LeaseTtl = 10;

    /// <summary>The server's member on node a, the client's on node b, streaming; both listed in the store.</summary>
    private static TestDir StartPair(TestNodes nodes, int host, bool restartOnFailure = false)
    {
        string[] restart = restartOnFailure ? ["--restart-on-failure"] : [];
        var work = new TestDir("across-work");
        string tcpstream = TargetBinaries.Get("tcpstream");
        string address = nodes.Address(host);
        string ip = address.Split('/')[0];
        nodes["a"].Amber(["run", "--group", "pair", .. restart, "--isolate", "pid,uts", "--net", "macvlan:eth0", "--address", address, "--", tcpstream, "server", work.Path, "--addr", ip])
            .ShouldSucceed();
        GroupHome.WaitUntil(() => File.Exists(work["port"]), "the server to listen");
        // The client's member is started from node a, on node b (amber run --node): b's agent runs it.
        nodes["a"].Amber(["run", "--group", "pair", .. restart, "--node", "b", "--", tcpstream, "client", work.Path, "--addr", ip]).ShouldSucceed();
        Assert.Single(nodes["b"].Members("pair"));
        Assert.Contains("group pair: ran a program for node a's uid 0", nodes["b"].Log);
        TcpStreamLogs.WaitForReceived(work, 4 << 20);
        GroupHome.WaitUntil(() => ListedOn(nodes, "pair").Count == 2, "group pair listed on nodes a and b", TimeSpan.FromSeconds(LeaseTtl + 10));
        return work;
    }

    private static JsonElement Status(TestNodes nodes, string via = "a") =>
        JsonDocument.Parse(AmberCli.Run("cluster", "status", "--etcd", nodes.Etcd!.Url, "--cluster", nodes.Cluster, "--node", via, "--json").ShouldSucceed().Stdout).RootElement;

    /// <summary>The nodes the store lists the group on with live processes.</summary>
    private static List<string> ListedOn(TestNodes nodes, string group) =>
        [.. Status(nodes).GetProperty("groups").EnumerateArray()
            .Where(g => g.GetProperty("name").GetString() == group && g.GetProperty("processes").GetArrayLength() > 0)
            .Select(g => g.GetProperty("node").GetString()!).Order()];

    /// <summary>The group as the store's catalog has it (leader, latest checkpoint across nodes), or null.</summary>
    private static JsonElement? Catalog(TestNodes nodes, string group, string via = "a") =>
        Status(nodes, via).GetProperty("acrossNodes").EnumerateArray().Where(g => g.GetProperty("name").GetString() == group).Select(g => (JsonElement?)g.Clone()).FirstOrDefault();

    private static List<string> Checkpoints(TestNode node, string group) =>
        [.. JsonDocument.Parse(node.Amber("images", "--group", group, "--json").ShouldSucceed().Stdout).RootElement.GetProperty("checkpoints").EnumerateArray().Select(c => c.GetProperty("name").GetString()!)];

    /// <summary>Where <paramref name="node"/> keeps its copy of node <paramref name="of"/>'s part <paramref name="part"/> (a group of that node).</summary>
    private static string CopyOf(TestNode node, string part, string of) => node.Inside(Path.Combine(node.Home.StateDirectory, "replicas", part, of));

    /// <summary>Whether <paramref name="node"/> keeps a copy of checkpoint <paramref name="id"/> of <paramref name="of"/>'s part of group pair.</summary>
    private static bool IsCopied(TestNode node, string of, string id) => File.Exists(Path.Combine(CopyOf(node, "pair", of), id, "manifest.img"));

    /// <summary>Whether <paramref name="node"/> keeps a copy of node <paramref name="of"/>'s part <paramref name="part"/>.</summary>
    private static bool HasCopy(TestNode node, string part, string of) => Directory.Exists(CopyOf(node, part, of));

    /// <summary>Both ends end the stream and check all they exchanged: both PASS.</summary>
    private static void Finish(TestDir work)
    {
        File.WriteAllText(work["stop"], "");
        foreach (string log in new[] { "server.log", "client.log" })
            GroupHome.WaitUntil(() => TcpStreamLogs.LastLine(work[log]).StartsWith("PASS", StringComparison.Ordinal), $"tcpstream's {log} to say PASS (it says: {TcpStreamLogs.LastLine(work[log])})");
    }

    [Fact]
    public void AGroupOnTwoNodesIsCheckpointedAtOneBarrierAndRecordedWholeInTheCatalog()
    {
        using var nodes = new TestNodes(["a", "b"], leaseTtlSeconds: LeaseTtl);
        using var work = StartPair(nodes, 120);
        int server = nodes["a"].Members("pair").Single(), client = nodes["b"].Members("pair").Single();

        var run = nodes["a"].Amber("checkpoint", "--group", "pair", "--json").ShouldSucceed();
        Assert.Contains("checkpointed group pair across 2 nodes as", run.Stderr);
        using var report = JsonDocument.Parse(run.Stdout);
        var entry = report.RootElement;
        string id = entry.GetProperty("id").GetString()!;
        Assert.Equal("a", entry.GetProperty("leader").GetString());
        Assert.True(entry.GetProperty("barrierMs").GetDouble() > 0);
        Assert.True(entry.GetProperty("freezeSpreadMs").GetDouble() >= 0);
        Assert.Contains("frozen within", run.Stderr);
        var parts = entry.GetProperty("parts").EnumerateArray().ToDictionary(p => p.GetProperty("node").GetString()!);
        Assert.Equal(["a", "b"], parts.Keys.Order());
        // (Their PIDs as each node sees them: the nodes are PID namespaces of their own here.)
        Assert.Single(parts["a"].GetProperty("processes").EnumerateArray());
        Assert.Single(parts["b"].GetProperty("processes").EnumerateArray());
        // Each part is a checkpoint of that node's store of the group.
        Assert.Contains(parts["a"].GetProperty("checkpoint").GetString(), Checkpoints(nodes["a"], "pair"));
        Assert.Contains(parts["b"].GetProperty("checkpoint").GetString(), Checkpoints(nodes["b"], "pair"));
        // Each part is copied to the other node (the next of the checkpoint's nodes, round the ring).
        Assert.Equal(["b"], parts["a"].GetProperty("copies").EnumerateArray().Select(c => c.GetString()));
        Assert.Equal(["a"], parts["b"].GetProperty("copies").EnumerateArray().Select(c => c.GetString()));
        Assert.True(IsCopied(nodes["b"], "a", parts["a"].GetProperty("checkpoint").GetString()!), "node b has no copy of node a's part");
        Assert.True(IsCopied(nodes["a"], "b", parts["b"].GetProperty("checkpoint").GetString()!), "node a has no copy of node b's part");
        // The catalog: node a leads, and this is the group's latest checkpoint across nodes.
        var catalog = Catalog(nodes, "pair")!.Value;
        Assert.Equal("a", catalog.GetProperty("leader").GetString());
        Assert.Equal("a", nodes.Etcd!.ElectionLeader("/amber/groups/pair/leader")); // etcd's election API says so too
        Assert.Equal(id, catalog.GetProperty("latest").GetProperty("id").GetString());
        // Both ends ran on, the same processes, every byte checked.
        TcpStreamLogs.WaitForReceived(work, TcpStreamLogs.Received(work) + (4 << 20));
        Assert.Equal([server], nodes["a"].Members("pair"));
        Assert.Equal([client], nodes["b"].Members("pair"));

        // A node the store does not list is no place to run a member.
        nodes["a"].Amber("run", "--group", "pair", "--node", "nosuch", "--", "/bin/true").ShouldFail("the cluster's store lists no live node nosuch");

        // The next one is incremental on each node, and so is its copy: the copies keep what it needs.
        using (var next = JsonDocument.Parse(nodes["a"].Amber("checkpoint", "--group", "pair", "--json").ShouldSucceed().Stdout))
        {
            foreach (var part in next.RootElement.GetProperty("parts").EnumerateArray())
            {
                string node = part.GetProperty("node").GetString()!, other = node == "a" ? "b" : "a";
                Assert.True(IsCopied(nodes[other], node, part.GetProperty("checkpoint").GetString()!), $"node {other} has no copy of node {node}'s second part");
                Assert.True(IsCopied(nodes[other], node, parts[node].GetProperty("checkpoint").GetString()!), $"node {other} dropped the first part of node {node}, which the second needs");
            }
            id = next.RootElement.GetProperty("id").GetString()!;
        }

        // Only the leader takes the group's checkpoints across nodes.
        nodes["b"].Amber("checkpoint", "--group", "pair").ShouldFail("node a leads group pair");
        var text = AmberCli.Run("cluster", "status", "--etcd", nodes.Etcd!.Url, "--cluster", nodes.Cluster, "--node", "b").ShouldSucceed().Stdout;
        Assert.Matches($@"(?m)^pair\s+a\s+{id} \(a: \S+, b: \S+; barrier [0-9.]+ ms\)$", text);

        // Both ends killed: the group comes back on both nodes from that checkpoint, released together
        // (neither end's packets meet a node where the other is not made yet), and the stream goes on
        // from the checkpoint's cut, every byte checked.
        // (Stopped first: the end killed second must not see the first's reset and write a FAIL to its log.)
        Spawner.Kill(server, 19);
        Spawner.Kill(client, 19);
        Spawner.Kill(server, 9);
        Spawner.Kill(client, 9);
        GroupHome.WaitUntil(() => nodes["a"].Members("pair").Count == 0 && nodes["b"].Members("pair").Count == 0, "both members to be gone");
        var restored = nodes["a"].Amber("restore", "--group", "pair", "--json").ShouldSucceed();
        Assert.Contains($"restored group pair across 2 nodes from {id}", restored.Stderr);
        using (var back = JsonDocument.Parse(restored.Stdout))
            Assert.Equal(["a", "b"], back.RootElement.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("node").GetString()));
        Assert.Single(nodes["a"].Members("pair"));
        Assert.Single(nodes["b"].Members("pair"));
        TcpStreamLogs.WaitForReceived(work, TcpStreamLogs.Received(work) + (4 << 20));
        Finish(work);
    }

    [Fact]
    public void WhenTheLeadersNodeDiesMidCheckpointNothingIsRecordedAndTheNextLeaderCheckpointsTheRest()
    {
        // A member on each of three nodes (counter.c, self-checking); node a leads, and its own part
        // pauses at its barrier, the others' held there, when node a is killed.
        using var nodes = new TestNodes(["a", "b", "c"], new Dictionary<string, IReadOnlyDictionary<string, string>> { ["a"] = new Dictionary<string, string> { ["AMBER_FAULT"] = "AtBarrier:sleep=8000" } },
            peerTimeoutSeconds: 5, leaseTtlSeconds: LeaseTtl);
        using var work = new TestDir("across-counters");
        string counter = TargetBinaries.Get("counter");
        foreach (string node in new[] { "a", "b", "c" })
        {
            Directory.CreateDirectory(work[node]);
            nodes[node].Amber("run", "--group", "trio", "--", counter, work[node], "4").ShouldSucceed();
        }
        GroupHome.WaitUntil(() => ListedOn(nodes, "trio").Count == 3, "group trio listed on nodes a, b and c", TimeSpan.FromSeconds(LeaseTtl + 10));
        int b = nodes["b"].Members("trio").Single(), c = nodes["c"].Members("trio").Single();

        var checkpointing = nodes["a"].Start("checkpoint", "--group", "trio");
        Thread.Sleep(2000); // b's and c's parts held by then, on a machine that is not stalled (either way, none may be kept)
        nodes["a"].Kill();
        checkpointing.Wait(TimeSpan.FromMinutes(1));
        // b and c: their members ran on, the same processes; what they had taken is gone; nothing in the catalog.
        Assert.Equal([b], nodes["b"].Members("trio"));
        Assert.Equal([c], nodes["c"].Members("trio"));
        Assert.Empty(Checkpoints(nodes["b"], "trio"));
        Assert.Empty(Checkpoints(nodes["c"], "trio"));
        Assert.NotEqual(JsonValueKind.Object, Catalog(nodes, "trio")?.GetProperty("latest").ValueKind);
        Assert.Contains("is lost", nodes["b"].Log + nodes["c"].Log);

        // Once a's lease has run out (its leadership with it), b leads, and checkpoints the group on b and c.
        string? taken = null, said = "";
        GroupHome.WaitUntil(() =>
        {
            var run = nodes["b"].Amber("checkpoint", "--group", "trio");
            Assert.True(run.ExitCode == 0 || run.Stderr.Contains("node a leads group trio"), $"checkpoint on b: {run.Stderr}");
            (taken, said) = (run.ExitCode == 0 ? run.Stdout.Trim() : null, run.Stderr);
            return taken is not null;
        }, "node b to lead group trio and checkpoint it", TimeSpan.FromSeconds(LeaseTtl + 20));
        var latest = Catalog(nodes, "trio")!.Value;
        Assert.True(latest.GetProperty("leader").GetString() == "b", $"the store says {latest}; the checkpoint on b said: {said}; b's log: {string.Join(" | ", nodes["b"].Log.Split('\n').TakeLast(8))}");
        Assert.Equal("b", nodes.Etcd!.ElectionLeader("/amber/groups/trio/leader")); // a's key went with its lease
        Assert.Equal(taken, latest.GetProperty("latest").GetProperty("id").GetString());
        Assert.Equal(["b", "c"], latest.GetProperty("latest").GetProperty("parts").EnumerateArray().Select(p => p.GetProperty("node").GetString()));
        Assert.Equal([b], nodes["b"].Members("trio"));
        Assert.Equal([c], nodes["c"].Members("trio"));
    }

    /// <summary>
    /// A node lost in the middle of a checkpoint across nodes (its part paused at its barrier): the
    /// leader gives the checkpoint up as soon as the store no longer lists that node live, not at the
    /// end of the agents' --peer-timeout (a minute here), so the group is free at once for the restore
    /// the loss calls for; the lost part comes back from its copy, every counter checked.
    /// </summary>
    [Fact]
    public void ANodeLostMidCheckpointEndsItAtOnceSoThatItsPartComesBackWithoutWaitingForTheTimeout()
    {
        const int ttl = 6;
        using var nodes = new TestNodes(["a", "b"], new Dictionary<string, IReadOnlyDictionary<string, string>> { ["b"] = new Dictionary<string, string> { ["AMBER_FAULT"] = "AtBarrier:sleep=5000" } },
            peerTimeoutSeconds: 60, leaseTtlSeconds: ttl);
        using var work = new TestDir("across-lost-mid");
        StartMovableDuo(nodes, work, storage: true);
        nodes["a"].Amber("checkpoint", "--group", "duo").ShouldSucceed(); // (b's part pauses 5 s at its barrier)

        var checkpointing = nodes["a"].Start("checkpoint", "--group", "duo");
        Thread.Sleep(2000); // b's part paused at its barrier by then
        var lost = System.Diagnostics.Stopwatch.StartNew();
        Crash(nodes, "b");
        var abandoned = checkpointing.Wait(TimeSpan.FromSeconds(90));
        double abandonedAfter = lost.Elapsed.TotalSeconds;
        Assert.NotEqual(0, abandoned.ExitCode);
        Assert.Contains("node b: it is lost (the cluster's store no longer lists it live)", abandoned.Stderr);
        GroupHome.WaitUntil(() => nodes["a"].Log.Contains("group duo: running again after the loss of node(s) b"), "node a to restore b's part",
            TimeSpan.FromSeconds(90), () => Tail(nodes["a"]));
        double runningAfter = lost.Elapsed.TotalSeconds;
        // (a lease of 6 s, renewed every 2 s: lost in the store 4 to 8 s after the crash; the peer timeout is 60 s)
        Assert.True(abandonedAfter < 30 && runningAfter < 40, $"checkpoint abandoned {abandonedAfter:0.0} s after the loss, group running again {runningAfter:0.0} s after it");
        Assert.Single(nodes["a"].Members("duo"));
        Assert.Single(nodes["a"].Members("duo.b"));
        StopCounters(nodes, work, "duo", ["a", "b"]);
    }

    /// <summary>Group duo: counter.c on node a, and on node b (started from a); both listed in the store.</summary>
    private static (int A, int B) StartDuo(TestNodes nodes, TestDir work)
    {
        string counter = TargetBinaries.Get("counter");
        foreach (string node in new[] { "a", "b" })
            Directory.CreateDirectory(work[node]);
        nodes["a"].Amber("run", "--group", "duo", "--", counter, work["a"], "4").ShouldSucceed();
        nodes["a"].Amber("run", "--group", "duo", "--node", "b", "--", counter, work["b"], "4").ShouldSucceed();
        GroupHome.WaitUntil(() => ListedOn(nodes, "duo").Count == 2, "group duo listed on nodes a and b", TimeSpan.FromSeconds(LeaseTtl + 10));
        return (nodes["a"].Members("duo").Single(), nodes["b"].Members("duo").Single());
    }

    /// <summary>
    /// Group duo: counter.c on node a and on node b (started from a), each in a PID namespace of its own
    /// (so it can move, or be restored beside another part, with the PIDs it had), its work directory
    /// its storage if <paramref name="storage"/>; both listed in the store.
    /// </summary>
    private static void StartMovableDuo(TestNodes nodes, TestDir work, bool storage)
    {
        string counter = TargetBinaries.Get("counter");
        foreach (string node in new[] { "a", "b" })
        {
            Directory.CreateDirectory(work[node]);
            nodes["a"].Amber(["run", "--group", "duo", "--isolate", "pid", .. storage ? new[] { "--storage", work[node] } : [], .. node == "a" ? Array.Empty<string>() : ["--node", node],
                "--", counter, work[node], "4"]).ShouldSucceed();
        }
        GroupHome.WaitUntil(() => ListedOn(nodes, "duo").Count == 2, "group duo listed on nodes a and b", TimeSpan.FromSeconds(LeaseTtl + 10));
    }

    [Fact]
    public void WithAStoreOfThreeMembersTheLossOfOneChangesNothing()
    {
        using var nodes = new TestNodes(["a", "b"], leaseTtlSeconds: LeaseTtl, etcdMembers: 3);
        using var work = new TestDir("across-quorum");
        var (a, b) = StartDuo(nodes, work);
        string first = nodes["a"].Amber("checkpoint", "--group", "duo").ShouldSucceed().Stdout.Trim();

        // The member every client tries first is killed: the others are a quorum, and answer.
        nodes.Etcd!.Stop(0);
        string second = nodes["a"].Amber("checkpoint", "--group", "duo").ShouldSucceed().Stdout.Trim();
        Assert.NotEqual(first, second);
        // (Recorded at once, or, if it came during the store's election, once the store answers again.)
        GroupHome.WaitUntil(() => Catalog(nodes, "duo")?.GetProperty("latest").GetProperty("id").GetString() == second, $"checkpoint {second} recorded",
            TimeSpan.FromSeconds(LeaseTtl + 15));
        Assert.Equal(2, Catalog(nodes, "duo")!.Value.GetProperty("checkpoints").GetInt32());
        // Longer than a lease later, both nodes are live still (their renewals went to the other members).
        Thread.Sleep(TimeSpan.FromSeconds(LeaseTtl + 2));
        var nodesNow = Status(nodes).GetProperty("nodes").EnumerateArray().ToDictionary(n => n.GetProperty("name").GetString()!, n => n.GetProperty("alive").GetBoolean());
        Assert.True(nodesNow["a"] && nodesNow["b"], $"nodes listed live: {string.Join(", ", nodesNow)}");
        Assert.DoesNotContain("lease in the cluster's store had expired", nodes["a"].Log + nodes["b"].Log);
        Assert.Equal([a], nodes["a"].Members("duo"));
        Assert.Equal([b], nodes["b"].Members("duo"));
    }

    [Fact]
    public void ACheckpointTakenWhileTheStoreIsAwayIsRecordedOnceItIsBack()
    {
        using var nodes = new TestNodes(["a", "b"], leaseTtlSeconds: LeaseTtl);
        using var work = new TestDir("across-away");
        var (a, b) = StartDuo(nodes, work);
        string first = nodes["a"].Amber("checkpoint", "--group", "duo").ShouldSucceed().Stdout.Trim();

        // The store away (shorter than the nodes' leases): node a, which leads the group, checkpoints it
        // across both nodes as it last saw them, and keeps the entry.
        nodes.Etcd!.Stop();
        var away = nodes["a"].Amber("checkpoint", "--group", "duo", "--json").ShouldSucceed();
        Assert.Contains("the cluster's store is out of reach: the checkpoint is recorded in its catalog once it answers", away.Stderr);
        string second;
        using (var entry = JsonDocument.Parse(away.Stdout))
        {
            second = entry.RootElement.GetProperty("id").GetString()!;
            Assert.Equal(["a", "b"], entry.RootElement.GetProperty("parts").EnumerateArray().Select(p => p.GetProperty("node").GetString()));
        }
        Assert.Equal([a], nodes["a"].Members("duo"));
        Assert.Equal([b], nodes["b"].Members("duo"));
        // The group's settings are the cluster's: not changed on one node while the store is away (nothing runs).
        var refused = nodes["a"].Amber("run", "--group", "duo", "--every", "5s", "--", "sleep", "600");
        Assert.NotEqual(0, refused.ExitCode);
        Assert.Contains("group duo runs on several nodes, and its settings are the cluster's: the cluster's store is out of reach", refused.Stderr);
        Assert.Equal([a], nodes["a"].Members("duo"));

        // Back: the entry is recorded (node a still leads: its lease lived through it), after the first.
        nodes.Etcd.Start();
        GroupHome.WaitUntil(() => Catalog(nodes, "duo")?.GetProperty("latest").GetProperty("id").GetString() == second, $"checkpoint {second} recorded",
            TimeSpan.FromSeconds(LeaseTtl + 15));
        Assert.Equal(2, Catalog(nodes, "duo")!.Value.GetProperty("checkpoints").GetInt32());
        Assert.NotEqual(first, second);
        Assert.Contains($"group duo: checkpoint across nodes {second}, taken while the cluster's store was out of reach, recorded in its catalog", nodes["a"].Log);
        Assert.Equal([a], nodes["a"].Members("duo"));
        Assert.Equal([b], nodes["b"].Members("duo"));
    }

    [Fact]
    public void ANodeThatFailsItsPartAbandonsTheCheckpointEverywhereAndEveryMemberRunsOn()
    {
        // Node b's part fails once it is read out, frozen, before it says so.
        using var nodes = new TestNodes(["a", "b"], new Dictionary<string, IReadOnlyDictionary<string, string>> { ["b"] = new Dictionary<string, string> { ["AMBER_FAULT"] = "AtBarrier" } },
            leaseTtlSeconds: LeaseTtl);
        using var work = StartPair(nodes, 121);
        int server = nodes["a"].Members("pair").Single(), client = nodes["b"].Members("pair").Single();

        var refused = nodes["a"].Amber("checkpoint", "--group", "pair").ShouldFail("checkpoint of group pair across nodes abandoned: node b: ");
        Assert.Contains("injected fault at AtBarrier", refused.Stderr);
        // Nothing kept on either node, nothing in the catalog, both ends running on as they were.
        Assert.Empty(Checkpoints(nodes["a"], "pair"));
        Assert.Empty(Checkpoints(nodes["b"], "pair"));
        Assert.NotEqual(JsonValueKind.Object, Catalog(nodes, "pair")?.GetProperty("latest").ValueKind);
        TcpStreamLogs.WaitForReceived(work, TcpStreamLogs.Received(work) + (4 << 20));
        Assert.Equal([server], nodes["a"].Members("pair"));
        Assert.Equal([client], nodes["b"].Members("pair"));
        Assert.Contains("group pair: operation across nodes abandoned, every part undone: node b: ", nodes["a"].Log);
        Finish(work);
    }

    /// <summary>
    /// Group ring on nodes a, b and c: on each node a part with an address of its own (and a PID
    /// namespace, whose first process is a sleep), holding the server end of the link to the next node and the client end of the link
    /// from the one before (each link a tcpstream pair, every byte of both directions checked). Link i's
    /// work directory is links[i]; its server runs on nodes[i].
    /// </summary>
    private static TestDir[] StartRing(TestNodes nodes, string[] names)
    {
        string tcpstream = TargetBinaries.Get("tcpstream");
        var links = names.Select((n, i) => new TestDir($"ring-{n}{names[(i + 1) % names.Length]}")).ToArray();
        var ips = new string[names.Length];
        for (int i = 0; i < names.Length; i++)
        {
            string address = nodes.Address(130 + i);
            ips[i] = address.Split('/')[0];
            // The PID namespace's first process, which must outlive the others (they all end with it).
            nodes[names[i]].Amber("run", "--group", "ring", "--isolate", "pid,uts", "--net", "macvlan:eth0", "--address", address, "--", "/bin/sleep", "100000").ShouldSucceed();
            nodes[names[i]].Amber("run", "--group", "ring", "--", tcpstream, "server", links[i].Path, "--addr", ips[i]).ShouldSucceed();
            GroupHome.WaitUntil(() => File.Exists(links[i]["port"]), $"link {i}'s server to listen");
        }
        for (int i = 0; i < names.Length; i++)
            nodes[names[(i + 1) % names.Length]].Amber("run", "--group", "ring", "--", tcpstream, "client", links[i].Path, "--addr", ips[i]).ShouldSucceed();
        foreach (var link in links)
            TcpStreamLogs.WaitForReceived(link, 2 << 20);
        GroupHome.WaitUntil(() => ListedOn(nodes, "ring").Count == names.Length, "group ring listed on every node", TimeSpan.FromSeconds(LeaseTtl + 10));
        return links;
    }

    /// <summary>Every link of a ring stopped: both ends of each check all they exchanged and say PASS.</summary>
    private static void FinishRing(TestDir[] links, Func<string> context)
    {
        foreach (var link in links)
            File.WriteAllText(link["stop"], "");
        foreach (var link in links)
            foreach (string log in new[] { "server.log", "client.log" })
                GroupHome.WaitUntil(() => TcpStreamLogs.LastLine(link[log]).StartsWith("PASS", StringComparison.Ordinal), $"tcpstream's {log} in {link.Path} to say PASS",
                    context: () => $" (it says: {TcpStreamLogs.LastLine(link[log])}; the other end: {string.Join(" | ", File.ReadAllLines(link[log == "server.log" ? "client.log" : "server.log"]).TakeLast(4))}; {context()})");
    }

    /// <summary>The parts of the group's latest checkpoint across nodes: "node" or "node/group" for a part under another name there.</summary>
    private static List<string> LatestParts(TestNodes nodes, string group, string via) =>
        [.. JsonDocument.Parse(AmberCli.Run("cluster", "status", "--etcd", nodes.Etcd!.Url, "--cluster", nodes.Cluster, "--node", via, "--json").ShouldSucceed().Stdout).RootElement
            .GetProperty("acrossNodes").EnumerateArray().Single(g => g.GetProperty("name").GetString() == group).GetProperty("latest").GetProperty("parts").EnumerateArray()
            .Select(p => p.GetProperty("node").GetString() + (p.TryGetProperty("local", out var local) && local.GetString() is { Length: > 0 } l ? $"/{l}" : ""))];

    /// <summary>
    /// Counters of group <paramref name="group"/> started on <paramref name="started"/> (work/NODE)
    /// stopped: each checks all its memory and its file's offset, and says PASS in the group's log of
    /// the node it was started on (wherever it runs now: the file is this machine's).
    /// </summary>
    private static void StopCounters(TestNodes nodes, TestDir work, string group, string[] started)
    {
        foreach (string node in started)
            File.WriteAllText(Path.Combine(work[node], "stop"), "");
        foreach (string node in started)
        {
            string log = nodes[node].Home.GroupLog(group);
            GroupHome.WaitUntil(() => File.Exists(log) && File.ReadAllLines(log).Any(l => l.StartsWith("PASS", StringComparison.Ordinal) || l.StartsWith("FAIL", StringComparison.Ordinal)), $"node {node}'s counter to end");
            Assert.DoesNotContain(File.ReadAllLines(log), l => l.StartsWith("FAIL", StringComparison.Ordinal));
        }
    }

    private static string Tail(TestNode node) => string.Join(" | ", node.Log.Split('\n').TakeLast(12));

    /// <summary>A node lost as a crashed machine is: cut off first (it says nothing more to anyone), then every process of it killed.</summary>
    private static void Crash(TestNodes nodes, string name)
    {
        nodes.SetLink(name, up: false);
        nodes[name].Kill();
    }

    [Fact]
    public void WhenANodeIsLostTheWholeGroupComesBackOnTheOthersFromItsLatestCheckpointEachTime()
    {
        const int ttl = 6;
        using var nodes = new TestNodes(["a", "b", "c"], peerTimeoutSeconds: 10, leaseTtlSeconds: ttl);
        var links = StartRing(nodes, ["a", "b", "c"]);
        try
        {
            var taken = nodes["a"].Amber("checkpoint", "--group", "ring").ShouldSucceed();
            Assert.Contains("checkpointed group ring across 3 nodes as", taken.Stderr);
            Assert.Equal(["a", "b", "c"], LatestParts(nodes, "ring", "a"));

            // Node b lost: a (the leader) restores b's part on c, which holds its copy (as group ring.b),
            // and puts a's and c's parts back at the same cut; all three run again, released together.
            long[] before = [.. links.Select(TcpStreamLogs.Received)];
            Crash(nodes, "b");
            GroupHome.WaitUntil(() => nodes["a"].Log.Contains("group ring: running again after the loss of node(s) b"), "node a to restore group ring after b's loss",
                TimeSpan.FromSeconds(ttl * 3 + 30), () => Tail(nodes["a"]) + " || c: " + Tail(nodes["c"]));
            Assert.Contains("group ring: node(s) b lost", nodes["a"].Log);
            Assert.Equal(3, nodes["a"].Members("ring").Count);
            Assert.Equal(3, nodes["c"].Members("ring").Count);
            Assert.Equal(3, nodes["c"].Members("ring.b").Count);
            // Every link goes on from the cut, every byte checked (the survivors were frozen before any
            // was ended: none saw a reset).
            for (int i = 0; i < links.Length; i++)
                TcpStreamLogs.WaitForReceived(links[i], before[i] + (4 << 20));
            // Then the leader checkpoints the group where it runs now, copies made again.
            GroupHome.WaitUntil(() => nodes["a"].Log.Contains("group ring: checkpointed across the nodes it runs on now"), "the checkpoint after the restore",
                TimeSpan.FromSeconds(60), () => Tail(nodes["a"]));
            Assert.Equal(["a", "c", "c/ring.b"], LatestParts(nodes, "ring", "a"));

            // Node a, the leader, lost: its lead goes with it; c takes it, and the whole group runs on c alone.
            before = [.. links.Select(TcpStreamLogs.Received)];
            Crash(nodes, "a");
            GroupHome.WaitUntil(() => nodes["c"].Log.Contains("group ring: running again after the loss of node(s) a"), "node c to restore group ring after a's loss",
                TimeSpan.FromSeconds(ttl * 3 + 30), () => Tail(nodes["c"]));
            Assert.Equal(3, nodes["c"].Members("ring").Count);
            Assert.Equal(3, nodes["c"].Members("ring.a").Count);
            Assert.Equal(3, nodes["c"].Members("ring.b").Count);
            for (int i = 0; i < links.Length; i++)
                TcpStreamLogs.WaitForReceived(links[i], before[i] + (4 << 20));
            GroupHome.WaitUntil(() => LatestParts(nodes, "ring", "c") is ["c", "c/ring.a", "c/ring.b"], "the catalog to place every part on c", TimeSpan.FromSeconds(60));

            // Every link ends well: both ends check all they exchanged.
            FinishRing(links, () => $"c: {Tail(nodes["c"])}");
        }
        finally
        {
            foreach (var link in links)
                link.Dispose();
        }
    }

    [Fact]
    public void ANodeCutOffHoldsItsPartUntilItIsBackAndEndsItThenIfTheOthersRestoredIt()
    {
        const int ttl = 6;
        using var nodes = new TestNodes(["a", "b", "c"], peerTimeoutSeconds: 10, leaseTtlSeconds: ttl);
        var links = StartRing(nodes, ["a", "b", "c"]);
        try
        {
            nodes["a"].Amber("checkpoint", "--group", "ring").ShouldSucceed();
            var stale = nodes["b"].Members("ring");
            Assert.Equal(3, stale.Count);
            long[] before = [.. links.Select(TcpStreamLogs.Received)];

            // Node b cut off from the store and every node, alive: before its lease can run out it freezes
            // its part (and takes its interface down); the others take it for lost, and a restores the
            // group, b's part on c. At no moment do both copies of b's part run.
            nodes.SetLink("b", up: false);
            GroupHome.WaitUntil(() => nodes["b"].Log.Contains("cut off from the cluster's store, as no other node answers either: groups ring frozen"), "node b to hold its part",
                TimeSpan.FromSeconds(ttl * 2), () => Tail(nodes["b"]));
            GroupHome.WaitUntil(() => nodes["a"].Log.Contains("group ring: running again after the loss of node(s) b"), "node a to restore group ring after b's loss",
                TimeSpan.FromSeconds(ttl * 3 + 30), () => Tail(nodes["a"]));
            Assert.DoesNotContain("group ring: node(s) b lost", nodes["b"].Log);
            Assert.Equal(3, nodes["c"].Members("ring.b").Count);
            Assert.Equal(stale, nodes["b"].Members("ring"));
            Assert.True(Cgroup.Open(nodes["b"].Home.Cgroup("ring"))!.Frozen, "node b's part runs while cut off");
            for (int i = 0; i < links.Length; i++)
                TcpStreamLogs.WaitForReceived(links[i], before[i] + (4 << 20));

            // Back: b finds its part taken over, and ends it (nothing of it ran meanwhile); the ring runs on.
            before = [.. links.Select(TcpStreamLogs.Received)];
            nodes.SetLink("b", up: true);
            GroupHome.WaitUntil(() => nodes["b"].Log.Contains("group ring: ended here: while this node was not live in the cluster's store, its part of group ring was restored on other nodes"),
                "node b to end its part taken over", TimeSpan.FromSeconds(ttl * 3), () => Tail(nodes["b"]));
            GroupHome.WaitUntil(() => nodes["b"].Members("ring").Count == 0, "node b's part to be gone");
            for (int i = 0; i < links.Length; i++)
                TcpStreamLogs.WaitForReceived(links[i], before[i] + (4 << 20));
            FinishRing(links, () => $"c: {Tail(nodes["c"])}");
        }
        finally
        {
            foreach (var link in links)
                link.Dispose();
        }
    }

    [Fact]
    public void AGroupWhosePartsAreIndependentGetsOnlyTheLostNodesPartBackWhileTheOthersRunOn()
    {
        const int ttl = 6;
        using var nodes = new TestNodes(["a", "b", "c"], peerTimeoutSeconds: 10, leaseTtlSeconds: ttl);
        using var work = new TestDir("across-independent");
        string counter = TargetBinaries.Get("counter");
        foreach (string node in new[] { "a", "b", "c" })
        {
            Directory.CreateDirectory(work[node]);
            // Its work directory (the file whose offset it checks) is its storage: rolled back with it.
            nodes[node].Amber("run", "--group", "trio", "--isolate", "pid", "--node-loss", "lost-only", "--storage", work[node], "--", counter, work[node], "4").ShouldSucceed();
        }
        GroupHome.WaitUntil(() => ListedOn(nodes, "trio").Count == 3, "group trio listed on nodes a, b and c", TimeSpan.FromSeconds(LeaseTtl + 10));
        nodes["a"].Amber("checkpoint", "--group", "trio").ShouldSucceed();
        int a = nodes["a"].Members("trio").Single(), b = nodes["b"].Members("trio").Single();

        // c lost: its part comes back on a (which holds its copy), from the checkpoint; a's and b's run on.
        Crash(nodes, "c");
        GroupHome.WaitUntil(() => nodes["a"].Log.Contains("group trio: running again after the loss of node(s) c"), "node a to restore c's part",
            TimeSpan.FromSeconds(ttl * 3 + 30), () => Tail(nodes["a"]));
        Assert.Equal([a], nodes["a"].Members("trio"));
        Assert.Equal([b], nodes["b"].Members("trio"));
        Assert.True(nodes["a"].Members("trio.c").Count == 1, $"trio.c on a: {string.Join(", ", nodes["a"].Members("trio.c"))}; its log: {string.Join(" | ", File.ReadAllLines(nodes["c"].Home.GroupLog("trio")).TakeLast(3))}; a: {Tail(nodes["a"])}");
        GroupHome.WaitUntil(() => LatestParts(nodes, "trio", "a") is ["a", "a/trio.c", "b"], "the catalog to place c's part on a", TimeSpan.FromSeconds(60));

        // Every counter checks all its memory and its file's offset: c's from the checkpoint on.
        StopCounters(nodes, work, "trio", ["a", "b", "c"]);
    }

    [Fact]
    public void TheLeadersScheduleCheckpointsTheGroupAcrossNodes()
    {
        using var nodes = new TestNodes(["a", "b"], leaseTtlSeconds: LeaseTtl);
        using var work = new TestDir("across-every");
        string counter = TargetBinaries.Get("counter");
        Directory.CreateDirectory(work["a"]);
        Directory.CreateDirectory(work["b"]);
        // Node a's part is checkpointed every 2 s; b's takes that schedule, the group's (its settings are the
        // cluster's): whichever node leads checkpoints the group across both, the other's schedule does nothing.
        nodes["a"].Amber("run", "--group", "duo", "--every", "2s", "--", counter, work["a"], "4").ShouldSucceed();
        nodes["a"].Amber("run", "--group", "duo", "--node", "b", "--", counter, work["b"], "4").ShouldSucceed();
        GroupHome.WaitUntil(() => ListedOn(nodes, "duo").Count == 2, "group duo listed on nodes a and b", TimeSpan.FromSeconds(LeaseTtl + 10));
        int a = nodes["a"].Members("duo").Single(), b = nodes["b"].Members("duo").Single();
        // Every scheduled checkpoint is one across both nodes, led by a, in the catalog.
        GroupHome.WaitUntil(() => Catalog(nodes, "duo") is { } g && g.GetProperty("checkpoints").GetInt32() >= 2, "two scheduled checkpoints across nodes", TimeSpan.FromSeconds(30),
            () => Tail(nodes["a"]));
        var latest = Catalog(nodes, "duo")!.Value;
        Assert.Contains(latest.GetProperty("leader").GetString(), new[] { "a", "b" });
        Assert.Equal(["a", "b"], LatestParts(nodes, "duo", "a"));
        Assert.DoesNotContain("checkpointed on this node alone", nodes["a"].Log);
        Assert.DoesNotContain("checkpointed on this node alone", nodes["b"].Log);
        Assert.Equal([a], nodes["a"].Members("duo"));
        Assert.Equal([b], nodes["b"].Members("duo"));
    }

    /// <summary>
    /// A group's settings are the cluster's (its store keeps them): the part started on b by --node
    /// takes the schedule given on a; a setting changed on b reaches a's part; a lost, b restores a's
    /// part from its copy and, leading now, checkpoints the group across nodes on the group's schedule
    /// (b's part was never given one of its own). Every counter checks its memory and file offset.
    /// </summary>
    [Fact]
    public void AGroupsSettingsAreTheClustersSoItsNextLeaderCheckpointsItOnTheSameSchedule()
    {
        const int ttl = 6;
        using var nodes = new TestNodes(["a", "b"], peerTimeoutSeconds: 10, leaseTtlSeconds: ttl);
        using var work = new TestDir("across-settings");
        string counter = TargetBinaries.Get("counter");
        foreach (string node in new[] { "a", "b" })
            Directory.CreateDirectory(work[node]);
        // (Each in a PID namespace of its own: a's part is to run on b beside b's, with the PIDs it had;
        // its work directory its storage, rolled back with it.)
        nodes["a"].Amber("run", "--group", "duo", "--isolate", "pid", "--storage", work["a"], "--every", "3s", "--", counter, work["a"], "4").ShouldSucceed();
        nodes["a"].Amber("run", "--group", "duo", "--isolate", "pid", "--storage", work["b"], "--node", "b", "--", counter, work["b"], "4").ShouldSucceed();
        Assert.Matches(@"group duo: created \(store [^)]*, every 3 s\)", nodes["b"].Log);
        GroupHome.WaitUntil(() => ListedOn(nodes, "duo").Count == 2, "group duo listed on nodes a and b", TimeSpan.FromSeconds(ttl + 10));
        Assert.Equal(3, Catalog(nodes, "duo")!.Value.GetProperty("settings").GetProperty("everySeconds").GetDouble());

        // Changed on b (with a program started there): the store has it, and a's part takes it.
        var changed = nodes["b"].Amber("run", "--group", "duo", "--keep-last", "20", "--", "sleep", "600").ShouldSucceed();
        Assert.Contains("group duo: --keep-last no rule -> 20", changed.Stderr);
        Assert.Equal(20, Catalog(nodes, "duo")!.Value.GetProperty("settings").GetProperty("keepLast").GetInt32());
        GroupHome.WaitUntil(() => nodes["a"].Log.Contains("group duo: takes the settings of group duo in the cluster's store: --keep-last no rule -> 20"),
            "node a's part to take the setting changed on b", TimeSpan.FromSeconds(ttl * 2), () => Tail(nodes["a"]));
        GroupHome.WaitUntil(() => Catalog(nodes, "duo") is { } g && g.GetProperty("checkpoints").GetInt32() >= 1, "a scheduled checkpoint across nodes", TimeSpan.FromSeconds(30),
            () => Tail(nodes["a"]));

        // a lost: b brings a's part back from its copy, and its schedule (the group's) goes on checkpointing the group.
        Crash(nodes, "a");
        GroupHome.WaitUntil(() => nodes["b"].Log.Contains("group duo: running again after the loss of node(s) a"), "node b to restore a's part",
            TimeSpan.FromSeconds(ttl * 3 + 30), () => Tail(nodes["b"]));
        int taken = Catalog(nodes, "duo", via: "b")!.Value.GetProperty("checkpoints").GetInt32();
        // (the checkpoint after the restore, then two of the schedule's at least)
        GroupHome.WaitUntil(() => Catalog(nodes, "duo", via: "b")!.Value.GetProperty("checkpoints").GetInt32() >= taken + 3, "node b's schedule to checkpoint the group across nodes",
            TimeSpan.FromSeconds(30), () => Tail(nodes["b"]) + " || counters: " + string.Join(" | ", new[] { "a", "b" }.SelectMany(n => File.ReadLines(nodes[n].Home.GroupLog("duo")).TakeLast(4))));
        var latest = Catalog(nodes, "duo", via: "b")!.Value.GetProperty("latest");
        Assert.Equal("b", latest.GetProperty("leader").GetString());
        Assert.Equal(["b", "b/duo.a"], LatestParts(nodes, "duo", "b"));
        Assert.Single(nodes["b"].Members("duo.a"));
        StopCounters(nodes, work, "duo", ["a", "b"]);
    }

    /// <summary>
    /// A group's settings and catalog stay in the cluster's store while any node has a part of it, and go
    /// with its last part (amber stop --remove): a group made later under its name is a new one, of its
    /// node alone, without the old one's schedule or catalog.
    /// </summary>
    [Fact]
    public void AGroupIsForgottenInTheClustersStoreWithItsLastPartSoThatItsNameIsANewGroupsAgain()
    {
        using var nodes = new TestNodes(["a", "b"], leaseTtlSeconds: LeaseTtl);
        nodes["a"].Amber("run", "--group", "solo", "--every", "1h", "--", "sleep", "600").ShouldSucceed();
        nodes["a"].Amber("run", "--group", "solo", "--node", "b", "--", "sleep", "600").ShouldSucceed();
        GroupHome.WaitUntil(() => ListedOn(nodes, "solo").Count == 2, "group solo listed on nodes a and b", TimeSpan.FromSeconds(LeaseTtl + 10));
        nodes["a"].Amber("checkpoint", "--group", "solo").ShouldSucceed();
        Assert.Equal(1, Catalog(nodes, "solo")!.Value.GetProperty("checkpoints").GetInt32());

        // b's part removed: a's runs on, and the group stays in the store as it was.
        var first = nodes["b"].Amber("stop", "--group", "solo", "--remove").ShouldSucceed();
        Assert.Contains("group solo stays in the cluster's store: node a runs a part of it", first.Stderr);
        Assert.Equal(3600, Catalog(nodes, "solo")!.Value.GetProperty("settings").GetProperty("everySeconds").GetDouble());
        Assert.Equal(1, Catalog(nodes, "solo")!.Value.GetProperty("checkpoints").GetInt32());
        GroupHome.WaitUntil(() => ListedOn(nodes, "solo").SequenceEqual(["a"]), "group solo listed on node a alone", TimeSpan.FromSeconds(LeaseTtl + 10));

        // The last part removed: the store forgets the group.
        var last = nodes["a"].Amber("stop", "--group", "solo", "--remove").ShouldSucceed();
        Assert.Contains("group solo forgotten in the cluster's store (its settings, its catalog of checkpoints across nodes): no node runs a part of it any more", last.Stderr);
        Assert.Null(Catalog(nodes, "solo"));

        // A group of that name made again on a is a's alone: no schedule taken from the old one, its checkpoints a's own.
        nodes["a"].Amber("run", "--group", "solo", "--", "sleep", "600").ShouldSucceed();
        Assert.DoesNotContain("every", nodes["a"].Log.Split('\n').Last(l => l.Contains("group solo: created", StringComparison.Ordinal)));
        nodes["a"].Amber("checkpoint", "--group", "solo").ShouldSucceed();
        Assert.Null(Catalog(nodes, "solo"));
        nodes["a"].Amber("stop", "--group", "solo", "--remove").ShouldSucceed();

        // Across nodes again; its last part removed while the store is out of reach: forgotten once it is back.
        nodes["a"].Amber("run", "--group", "solo", "--every", "1h", "--", "sleep", "600").ShouldSucceed();
        nodes["a"].Amber("run", "--group", "solo", "--node", "b", "--", "sleep", "600").ShouldSucceed();
        GroupHome.WaitUntil(() => ListedOn(nodes, "solo").Count == 2, "group solo listed on nodes a and b again", TimeSpan.FromSeconds(LeaseTtl + 10));
        Assert.NotNull(Catalog(nodes, "solo"));
        nodes["b"].Amber("stop", "--group", "solo", "--remove").ShouldSucceed();
        GroupHome.WaitUntil(() => ListedOn(nodes, "solo").SequenceEqual(["a"]), "group solo listed on node a alone again", TimeSpan.FromSeconds(LeaseTtl + 10));
        nodes.Etcd!.Stop();
        var away = nodes["a"].Amber("stop", "--group", "solo", "--remove").ShouldSucceed();
        Assert.Contains("group solo is forgotten in the cluster's store once it is in reach again, if no node runs a part of it then", away.Stderr);
        nodes.Etcd.Start();
        GroupHome.WaitUntil(() => nodes["a"].Log.Contains("the cluster's store in reach again: group solo forgotten in the cluster's store", StringComparison.Ordinal),
            "node a to forget group solo in the store once it is back", TimeSpan.FromSeconds(LeaseTtl * 3 + 30), () => Tail(nodes["a"]));
        Assert.Null(Catalog(nodes, "solo"));
    }

    [Fact]
    public void AMemberThatFailsOnOneNodeBringsTheWholeGroupBackAtTheCutWithRestartOnFailure()
    {
        using var nodes = new TestNodes(["a", "b"], leaseTtlSeconds: LeaseTtl);
        using var work = StartPair(nodes, 122, restartOnFailure: true);
        string id = nodes["a"].Amber("checkpoint", "--group", "pair").ShouldSucceed().Stdout.Trim();
        int server = nodes["a"].Members("pair").Single(), client = nodes["b"].Members("pair").Single();
        long before = TcpStreamLogs.Received(work);

        // The client dies on b (the server stopped first, so that it never sees the reset): b's coordinator
        // asks the group's leader, a, which restores both ends from the checkpoint across nodes, released
        // together: the stream goes on from that cut, every byte checked.
        Spawner.Kill(server, 19);
        Spawner.Kill(client, 9);
        GroupHome.WaitUntil(() => nodes["b"].Log.Contains("group pair: a member failed; the group it is a part of, pair, is restored by its leader: node a did: restored group pair across 2 nodes"),
            "node b to have the group restored by its leader", TimeSpan.FromSeconds(60), () => Tail(nodes["b"]) + " || a: " + Tail(nodes["a"]));
        Assert.Contains($"restoring the group from its checkpoint across nodes {id}", nodes["a"].Log);
        Assert.NotEqual([server], nodes["a"].Members("pair"));
        Assert.Single(nodes["a"].Members("pair"));
        Assert.Single(nodes["b"].Members("pair"));
        TcpStreamLogs.WaitForReceived(work, before + (4 << 20));
        Finish(work);
    }

    [Fact]
    public void APartMigratedToAnotherNodeIsPlacedThereInTheCatalogByACheckpointAcrossNodes()
    {
        using var nodes = new TestNodes(["a", "b", "c"], leaseTtlSeconds: LeaseTtl);
        using var work = new TestDir("across-moved");
        StartMovableDuo(nodes, work, storage: false);
        nodes["a"].Amber("checkpoint", "--group", "duo").ShouldSucceed();
        Assert.Equal(["a", "b"], LatestParts(nodes, "duo", "a"));

        // b's part moves to c (placed there by the move); then a, the leader, checkpoints the group across
        // a and c (copies made anew), and the catalog's latest is that checkpoint.
        var moved = nodes["b"].Amber("migrate", "--group", "duo", "--to", nodes["c"].Listen, "--json").ShouldSucceed();
        Assert.Contains("its leader checkpoints it across the nodes it runs on now", moved.Stderr);
        string placed = JsonDocument.Parse(moved.Stdout).RootElement.GetProperty("placed").GetString()!;
        GroupHome.WaitUntil(() => nodes["b"].Log.Contains("group duo: migrated; group duo, which it is a part of, checkpointed across the nodes it runs on now by its leader: node a did"),
            "the leader's checkpoint after the move", TimeSpan.FromSeconds(LeaseTtl * 2 + 10), () => Tail(nodes["b"]));
        Assert.NotEqual(placed, Catalog(nodes, "duo")!.Value.GetProperty("latest").GetProperty("id").GetString());
        Assert.Equal(["a", "c"], LatestParts(nodes, "duo", "a"));
        Assert.Empty(nodes["b"].Members("duo"));
        Assert.Single(nodes["c"].Members("duo"));
        // (The moved counter's output still goes to the file it had on b, which is this machine's.)
        StopCounters(nodes, work, "duo", ["a", "b"]);
    }

    /// <summary>
    /// A part migrated to a node that runs another part of its group (a node drained onto the others)
    /// arrives there as a part of that group, named NAME.NODE as a part restored from a lost node's copy
    /// is, and the move places it so in the catalog; the leader then checkpoints the group with both
    /// parts on that node. The part moves on to a third node under that name. Every counter checks its
    /// memory and its file's offset.
    /// </summary>
    [Fact]
    public void APartMovesToANodeThatRunsAnotherPartOfItsGroupAsAPartOfThatGroup()
    {
        using var nodes = new TestNodes(["a", "b", "c"], peerTimeoutSeconds: 10, leaseTtlSeconds: LeaseTtl);
        using var work = new TestDir("across-drain");
        StartMovableDuo(nodes, work, storage: true);
        nodes["a"].Amber("checkpoint", "--group", "duo").ShouldSucceed();
        // Each part is copied to the other node.
        Assert.True(HasCopy(nodes["a"], "duo", "b"));
        Assert.True(HasCopy(nodes["b"], "duo", "a"));

        // b drained: its part moves to a, which runs a's part of the group (post-copy: its pages come on a link for that name).
        var moved = nodes["b"].Amber("migrate", "--group", "duo", "--to", nodes["a"].Listen, "--mode", "postcopy", "--json").ShouldSucceed();
        Assert.Contains("group duo runs on node a as group duo.b, a part of group duo", moved.Stderr);
        var report = JsonDocument.Parse(moved.Stdout).RootElement;
        Assert.Equal("duo.b", report.GetProperty("arrivedAs").GetString());
        Assert.DoesNotContain(report.GetProperty("warnings").EnumerateArray(), w => w.GetString()!.Contains("as group duo.b", StringComparison.Ordinal)); // (no warning)
        Assert.NotEmpty(report.GetProperty("placed").GetString()!); // (the leader's checkpoint after the move may have followed already)
        Assert.Equal(["a", "a/duo.b"], LatestParts(nodes, "duo", "a"));
        Assert.Empty(nodes["b"].Members("duo"));
        Assert.Single(nodes["a"].Members("duo"));
        Assert.Single(nodes["a"].Members("duo.b"));
        // The leader checkpoints the group where it runs now: both parts, on a.
        GroupHome.WaitUntil(() => nodes["b"].Log.Contains("group duo: migrated; group duo, which it is a part of, checkpointed across the nodes it runs on now by its leader: node a did"),
            "the leader's checkpoint after the move", TimeSpan.FromSeconds(LeaseTtl * 2 + 10), () => Tail(nodes["b"]) + " || a: " + Tail(nodes["a"]));
        Assert.NotEqual(report.GetProperty("placed").GetString(), Catalog(nodes, "duo")!.Value.GetProperty("latest").GetProperty("id").GetString());
        Assert.Equal(["a", "a/duo.b"], LatestParts(nodes, "duo", "a"));
        // The group runs on one node now: the copies of its parts on a and b are of no use, and go.
        // (the log's line written once the copy is gone: waited for too)
        GroupHome.WaitUntil(() => !HasCopy(nodes["a"], "duo", "b") && !HasCopy(nodes["b"], "duo", "a")
                && nodes["b"].Log.Contains("removed this node's copy of node a's part duo of group duo", StringComparison.Ordinal),
            "the copies the catalog no longer needs to be removed", TimeSpan.FromSeconds(LeaseTtl * 2), () => Tail(nodes["a"]) + " || b: " + Tail(nodes["b"]));

        // It moves on to c, under its name there, and is placed there by the move.
        var onward = nodes["a"].Amber("migrate", "--group", "duo.b", "--to", nodes["c"].Listen, "--json").ShouldSucceed();
        Assert.Equal("duo.b", JsonDocument.Parse(onward.Stdout).RootElement.GetProperty("arrivedAs").GetString());
        Assert.Empty(nodes["a"].Members("duo.b"));
        Assert.Single(nodes["c"].Members("duo.b"));
        Assert.Equal(["a", "c/duo.b"], LatestParts(nodes, "duo", "a"));
        // The leader's checkpoint after that move copies each part to the other node again.
        GroupHome.WaitUntil(() => HasCopy(nodes["a"], "duo.b", "c") && HasCopy(nodes["c"], "duo", "a"), "the parts copied again",
            TimeSpan.FromSeconds(LeaseTtl * 2 + 10), () => Tail(nodes["a"]));
        // (b's counter's output still goes to the file it had on b, which is this machine's.)
        StopCounters(nodes, work, "duo", ["a", "b"]);
    }

    /// <summary>
    /// A migrated part is placed on its new node by the move itself (the transaction that confirms it):
    /// its old node lost at once after the move (before the leader's checkpoint across the nodes it
    /// runs on now) brings nothing back, twice or otherwise; its new node lost then brings it back from
    /// the copy made of it on its old node, the whole group rolled back to the cut, every counter's
    /// memory and file checked.
    /// </summary>
    [Fact]
    public void AMigratedPartIsPlacedByTheMoveSoNeitherNodesLossBringsItBackTwiceOrLosesIt()
    {
        const int ttl = 6;
        using var nodes = new TestNodes(["a", "b", "c"], peerTimeoutSeconds: 10, leaseTtlSeconds: ttl);
        using var work = new TestDir("across-placed");
        // Its work directory (the file whose offset it checks) is its storage: rolled back with it.
        StartMovableDuo(nodes, work, storage: true);
        nodes["a"].Amber("checkpoint", "--group", "duo").ShouldSucceed();
        Assert.Equal(["a", "b"], LatestParts(nodes, "duo", "a"));
        int a = nodes["a"].Members("duo").Single();

        // b's part moves to c, and is placed there by the move; b is lost at once after it.
        var moved = nodes["b"].Amber("migrate", "--group", "duo", "--to", nodes["c"].Listen, "--json").ShouldSucceed();
        Crash(nodes, "b");
        string placed = JsonDocument.Parse(moved.Stdout).RootElement.GetProperty("placed").GetString()!;
        var catalog = Catalog(nodes, "duo")!.Value.GetProperty("latest");
        Assert.Equal(placed, catalog.GetProperty("id").GetString()); // (not yet the leader's checkpoint after the move: b went first)
        Assert.Equal(["a", "c"], LatestParts(nodes, "duo", "a"));
        Assert.Equal("b", catalog.GetProperty("parts").EnumerateArray().Single(p => p.GetProperty("node").GetString() == "c").GetProperty("copiesOf").GetString());

        // b's lease runs out, and a sees it gone: nothing of the group is restored anywhere.
        GroupHome.WaitUntil(() => !Status(nodes).GetProperty("nodes").EnumerateArray().Any(n => n.GetProperty("name").GetString() == "b" && n.GetProperty("alive").GetBoolean()),
            "b's lease to run out", TimeSpan.FromSeconds(ttl * 2 + 10));
        Thread.Sleep(TimeSpan.FromSeconds(ttl * 2));
        Assert.DoesNotContain("group duo: node(s) b lost", nodes["a"].Log + nodes["c"].Log);
        Assert.Equal([a], nodes["a"].Members("duo"));
        Assert.Empty(nodes["a"].Members("duo.b"));
        Assert.Single(nodes["c"].Members("duo"));

        // c lost: a restores c's part from its copy of b's part (as group duo.c), and its own at the same cut.
        Crash(nodes, "c");
        GroupHome.WaitUntil(() => nodes["a"].Log.Contains("group duo: running again after the loss of node(s) c"), "node a to restore c's part",
            TimeSpan.FromSeconds(ttl * 3 + 30), () => Tail(nodes["a"]));
        Assert.Single(nodes["a"].Members("duo")); // rolled back: made again (in its PID namespace, with the same PIDs)
        Assert.Single(nodes["a"].Members("duo.c"));

        // Both counters check all their memory and their file's offset, from the cut on.
        // (The moved counter's output goes to the file it had on b, which is this machine's.)
        StopCounters(nodes, work, "duo", ["a", "b"]);
    }

    /// <summary>
    /// The source's node killed once the catalog places the moved part on its destination, before it
    /// could tell the destination to release it: the destination, its link gone, finds the part placed
    /// on it and releases it (the source had ended its copy first); the counter goes on there, checked.
    /// </summary>
    [Fact]
    public void AMovePlacedInTheCatalogStandsThoughItsSourceDiesBeforeSayingSo()
    {
        using var nodes = new TestNodes(["a", "b", "c"], new Dictionary<string, IReadOnlyDictionary<string, string>> { ["b"] = new Dictionary<string, string> { ["AMBER_FAULT"] = "MovePlaced:sleep=8000" } },
            leaseTtlSeconds: LeaseTtl);
        using var work = new TestDir("across-placed-then");
        StartMovableDuo(nodes, work, storage: false);
        nodes["a"].Amber("checkpoint", "--group", "duo").ShouldSucceed();

        var migrating = nodes["b"].Start("migrate", "--group", "duo", "--to", nodes["c"].Listen);
        GroupHome.WaitUntil(() => LatestParts(nodes, "duo", "a") is ["a", "c"], "the move to be placed in the catalog", TimeSpan.FromSeconds(60), () => Tail(nodes["b"]));
        Assert.Empty(nodes["b"].Members("duo")); // ended before it was placed
        nodes["b"].Kill();
        migrating.Wait(TimeSpan.FromMinutes(1));
        GroupHome.WaitUntil(() => nodes["c"].Log.Contains("but the catalog places it here"), "node c to release the part", TimeSpan.FromSeconds(60), () => Tail(nodes["c"]));
        Assert.Single(nodes["c"].Members("duo"));

        // (The moved counter's output goes to the file it had on b, which is this machine's.)
        string moved = nodes["b"].Home.GroupLog("duo");
        int lines = File.ReadAllLines(moved).Length;
        GroupHome.WaitUntil(() => File.ReadAllLines(moved).Length > lines + 10, "the moved counter to tick on node c");
        StopCounters(nodes, work, "duo", ["a", "b"]);
    }

    /// <summary>
    /// amber checkpoint --stop of a group across nodes: every part checkpointed at one barrier and ended
    /// there (none runs after the cut), the catalog's entry marked stopped. A node lost then brings
    /// nothing back (the group was stopped on purpose); amber restore brings every part back from that
    /// checkpoint, the lost node's from its copy, and the catalog says where they run; every counter
    /// checks its memory and its file's offset.
    /// </summary>
    [Fact]
    public void AGroupAcrossNodesStopsAtOneCheckpointStaysStoppedAndComesBackFromIt()
    {
        const int ttl = 6;
        using var nodes = new TestNodes(["a", "b"], peerTimeoutSeconds: 10, leaseTtlSeconds: ttl);
        using var work = new TestDir("across-stop");
        // b's part is to run on a beside a's, with the PIDs it had.
        StartMovableDuo(nodes, work, storage: false);

        var stopped = nodes["a"].Amber("checkpoint", "--group", "duo", "--stop").ShouldSucceed();
        Assert.Contains("checkpointed and stopped group duo across 2 nodes", stopped.Stderr);
        Assert.Empty(nodes["a"].Members("duo"));
        Assert.Empty(nodes["b"].Members("duo"));
        var latest = Catalog(nodes, "duo")!.Value.GetProperty("latest");
        Assert.True(latest.GetProperty("stopped").GetBoolean(), latest.ToString());
        // Nothing of it runs after the cut: its logs stay as they were.
        long[] sizes = [.. new[] { "a", "b" }.Select(n => new FileInfo(nodes[n].Home.GroupLog("duo")).Length)];
        Thread.Sleep(300);
        Assert.Equal(sizes, new[] { "a", "b" }.Select(n => new FileInfo(nodes[n].Home.GroupLog("duo")).Length));

        // b lost: once its lease has run out and a has seen it for longer than a TTL, nothing came back.
        Crash(nodes, "b");
        GroupHome.WaitUntil(() => !Status(nodes).GetProperty("nodes").EnumerateArray().Any(n => n.GetProperty("name").GetString() == "b" && n.GetProperty("alive").GetBoolean()),
            "b's lease to run out", TimeSpan.FromSeconds(ttl * 2 + 10));
        Thread.Sleep(TimeSpan.FromSeconds(ttl * 2));
        Assert.DoesNotContain("group duo: node(s) b lost", nodes["a"].Log);
        Assert.Empty(nodes["a"].Members("duo"));
        Assert.Empty(nodes["a"].Members("duo.b"));

        // Restored by hand: a's part here, b's from a's copy of it (as group duo.b).
        Assert.Contains("restored group duo across 1 nodes", nodes["a"].Amber("restore", "--group", "duo").ShouldSucceed().Stderr);
        Assert.Single(nodes["a"].Members("duo"));
        Assert.Single(nodes["a"].Members("duo.b"));
        latest = Catalog(nodes, "duo")!.Value.GetProperty("latest");
        Assert.False(latest.GetProperty("stopped").GetBoolean(), latest.ToString());
        Assert.Equal(["a", "a/duo.b"], LatestParts(nodes, "duo", "a"));
        // (b's counter's output goes to the file it had on b, which is this machine's.)
        StopCounters(nodes, work, "duo", ["a", "b"]);
    }
}
