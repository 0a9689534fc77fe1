using System.Text.Json;

namespace Amber.Integration.Tests;

/// <summary>
/// The cluster's store (amber agent --etcd, amber cluster status): a real etcd on the nodes' bridge,
/// TLS only, with the cluster's certificates. Nodes register under leases and are listed live while
/// they renew them, with the groups they run and their latest whole checkpoints; a node killed drops
/// out once its lease runs out; a node of another cluster is kept out; and the groups run on while
/// the store is away, their nodes registering again once it is back.
/// </summary>
public sealed class ClusterStoreTests
{
    // The agents' default: a shorter lease flapped on a loaded machine (etcd's fsyncs and the renewals
    // waiting behind the tests' checkpoints: two renewals in a row missed a 3 s lease).
    private const int LeaseTtl = 10;

    private static JsonElement Status(TestNodes nodes, string asNode = "a") =>
        JsonDocument.Parse(AmberCli.Run("cluster", "status", "--etcd", nodes.Etcd!.Url, "--cluster", nodes.Cluster, "--node", asNode, "--json")
            .ShouldSucceed().Stdout).RootElement;

    private static JsonElement? Node(JsonElement status, string name) =>
        status.GetProperty("nodes").EnumerateArray().Where(n => n.GetProperty("name").GetString() == name).Select(n => (JsonElement?)n).FirstOrDefault();

    private static bool Alive(JsonElement status, string name) => Node(status, name)?.GetProperty("alive").GetBoolean() == true;

    private static JsonElement? Group(JsonElement status, string name) =>
        status.GetProperty("groups").EnumerateArray().Where(g => g.GetProperty("name").GetString() == name).Select(g => (JsonElement?)g).FirstOrDefault();

    [Fact]
    public void NodesAreListedWhileTheyLiveWithTheirGroupsAndTheirLatestCheckpoints()
    {
        using var nodes = new TestNodes(["a", "b"], leaseTtlSeconds: LeaseTtl);
        GroupHome.WaitUntil(() => Status(nodes) is var s && Alive(s, "a") && Alive(s, "b"), "both nodes listed live");
        var b = Node(Status(nodes), "b")!.Value;
        Assert.Equal(nodes["b"].Listen, b.GetProperty("address").GetString());
        Assert.InRange(b.GetProperty("leaseSeconds").GetInt64(), 1, LeaseTtl);
        Assert.Contains("registered in the cluster's store", nodes["b"].Log);

        // A group of node a: listed there with its process, then with its checkpoint.
        nodes["a"].Amber("run", "--group", "work", "--", "/bin/sleep", "1000").ShouldSucceed();
        GroupHome.WaitUntil(() => Group(Status(nodes), "work") is { } g && g.GetProperty("processes").GetArrayLength() == 1, "group work listed with its process");
        Assert.Equal("a", Group(Status(nodes), "work")!.Value.GetProperty("node").GetString());
        string checkpoint = nodes["a"].Amber("checkpoint", "--group", "work").ShouldSucceed().Stdout.Trim();
        GroupHome.WaitUntil(() => Group(Status(nodes), "work")?.GetProperty("latest").GetString() == checkpoint, $"checkpoint {checkpoint} listed");

        // The text form says the same.
        var text = AmberCli.Run("cluster", "status", "--etcd", nodes.Etcd!.Url, "--cluster", nodes.Cluster, "--node", "b").ShouldSucceed().Stdout;
        Assert.Matches(@"(?m)^b\s+live\s", text);
        Assert.Matches($@"(?m)^work\s+a\s+\d+\s+{checkpoint} ", text);

        // Node b killed (its agent and all of it): listed, gone, once its lease has run out; a and its group live on.
        nodes["b"].Kill();
        // (etcd ends a lease within about a second of its TTL; the margin is for a loaded machine's CLI runs.)
        GroupHome.WaitUntil(() => !Alive(Status(nodes), "b"), "node b listed as gone", TimeSpan.FromSeconds(LeaseTtl + 15));
        Assert.NotNull(Node(Status(nodes), "b"));
        // (A machine stalled for longer than the lease drops a too, which registers again: listed live with its group.)
        GroupHome.WaitUntil(() => Status(nodes) is var s && Alive(s, "a") && Group(s, "work") is not null, "node a listed live with its group",
            context: () => $"; its agent's log ends: {string.Join(" | ", nodes["a"].Log.Split('\n').TakeLast(5))}");
        Assert.Single(nodes["a"].Members("work"));
    }

    [Fact]
    public void TheStoreOptionsAreCheckedBeforeAnythingElse()
    {
        // Usage errors (exit 2), said before the agent looks for its certificates (there are none here).
        string[] agent = ["agent", "--listen", "127.0.0.1:1", "--cluster", "/nonexistent", "--node", "n1"];
        AmberCli.Run([.. agent, "--etcd", "https://127.0.0.1:2379", "--lease-ttl", "1"]).ShouldBeUsageError("--lease-ttl 1: give 2 to 3600 seconds");
        AmberCli.Run([.. agent, "--lease-ttl", "5"]).ShouldBeUsageError("--lease-ttl goes with --etcd");
        AmberCli.Run([.. agent, "--etcd", "127.0.0.1:2379"]).ShouldBeUsageError("is not an etcd member's client URL");
        AmberCli.Run([.. agent, "--etcd", "https://127.0.0.1:2379/v3"]).ShouldBeUsageError("is not an etcd member's client URL");
        AmberCli.Run([.. agent, "--etcd", "https://127.0.0.1:2379"]).ShouldFail("ca.crt is missing");
    }

    [Fact]
    public void ANodeOfAnotherClusterIsKeptOutOfTheStore()
    {
        using var nodes = new TestNodes(["a"], leaseTtlSeconds: LeaseTtl);
        // Its agent starts, and cannot register: the store refuses its certificate.
        var stranger = nodes.Stranger("b", 30);
        GroupHome.WaitUntil(() => stranger.Log.Contains("the cluster's store is out of reach", StringComparison.Ordinal), "the stranger's agent to say it cannot register");
        var status = Status(nodes);
        Assert.True(Alive(status, "a"));
        Assert.Null(Node(status, "b"));
        // Nor does its certificate read the store.
        string other = Path.Combine(Path.GetDirectoryName(nodes.Cluster)!, "other-cluster");
        AmberCli.Run("cluster", "status", "--etcd", nodes.Etcd!.Url, "--cluster", other, "--node", "b").ShouldFail("no etcd member answered");
        // And a store on plain HTTP is not one.
        AmberCli.Run("cluster", "status", "--etcd", nodes.Etcd.Url.Replace("https:", "http:", StringComparison.Ordinal), "--cluster", nodes.Cluster, "--node", "a")
            .ShouldBeUsageError("speak TLS only");
    }

    [Fact]
    public void GroupsRunOnWithoutTheStoreAndTheirNodesRegisterAgainWhenItIsBack()
    {
        using var nodes = new TestNodes(["a"], leaseTtlSeconds: LeaseTtl);
        nodes["a"].Amber("run", "--group", "work", "--", "/bin/sleep", "1000").ShouldSucceed();
        GroupHome.WaitUntil(() => Group(Status(nodes), "work") is not null, "group work listed");
        var pids = nodes["a"].Members("work");

        nodes.Etcd!.Stop();
        GroupHome.WaitUntil(() => nodes["a"].Log.Contains("the cluster's store is out of reach", StringComparison.Ordinal), "node a to say the store is out of reach");
        Thread.Sleep(TimeSpan.FromSeconds(LeaseTtl + 1)); // longer than its lease
        Assert.Equal(pids, nodes["a"].Members("work"));
        nodes["a"].Amber("checkpoint", "--group", "work").ShouldSucceed(); // checkpoints are local

        nodes.Etcd.Start();
        GroupHome.WaitUntil(() => Status(nodes) is var s && Alive(s, "a") && Group(s, "work") is not null, "node a listed live again, with its group", TimeSpan.FromSeconds(30));
        Assert.Equal(pids, nodes["a"].Members("work"));
    }
}
