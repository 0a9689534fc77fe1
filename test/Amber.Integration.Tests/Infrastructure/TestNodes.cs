using System.Globalization;
using Amber.Coordinator;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>
/// Nodes of a cluster on this machine, for migration tests. Each node is a network, PID and mount
/// namespace of its own (with its own /sys, so sysfs shows its interfaces, the cgroup hierarchy
/// mounted again under it, and a /run of its own), whose first process becomes its agent (amber
/// agent, so killing it kills the node); its interface eth0 is one end of a veth pair whose other end
/// is on a bridge the test made; and a client namespace is on the same bridge. Addresses are of a
/// /24 of the test's own; traffic stays between these namespaces. Dispose kills the nodes and removes
/// the bridge, the veths and the directories.
/// </summary>
public sealed class TestNodes : IDisposable
{
    private readonly TestDir _dir = new("nodes");
    private readonly int _subnet = Random.Shared.Next(0, 250);
    private readonly Dictionary<string, TestNode> _nodes = [];
    private readonly List<string> _links = [];
    private readonly Dictionary<string, string> _linkOf = [];
    private readonly Dictionary<string, (int Host, IReadOnlyDictionary<string, string>? Environment)> _started = [];
    private TargetProcess? _client;
    private readonly string _peerTimeout;
    private readonly string _store = ""; // the agents' --etcd and --lease-ttl

    /// <param name="names">The nodes, each with its agent.</param>
    /// <param name="environment">Extra environment of the named nodes' agents (AMBER_FAULT, say).</param>
    /// <param name="homeSizes">Nodes whose home is a tmpfs of this size (mount's size=: "300k"), for a full disk.</param>
    /// <param name="peerTimeoutSeconds">The agents' --peer-timeout (theirs, 30 s, if null).</param>
    /// <param name="leaseTtlSeconds">With it, a real etcd on the bridge (<see cref="Etcd"/>), started first, which the agents register in with leases of this TTL.</param>
    /// <param name="etcdMembers">How many members that etcd has (on the bridge's addresses 1, 2, ...).</param>
    public TestNodes(string[] names, IReadOnlyDictionary<string, IReadOnlyDictionary<string, string>>? environment = null,
        IReadOnlyDictionary<string, string>? homeSizes = null, int? peerTimeoutSeconds = null, int? leaseTtlSeconds = null, int etcdMembers = 1)
    {
        _peerTimeout = peerTimeoutSeconds is int seconds ? $" --peer-timeout {seconds}" : "";
        Bridge = $"ambn{Random.Shared.Next(0x100000, 0xffffff):x}";
        // An address of its own: a bridge without one takes the lowest of its ports', and changes it when
        // that port goes (a node killed), which the nodes' ARP caches do not know: the bridge's own
        // address (etcd's) was out of their reach for seconds after.
        string address = $"02:a6:{string.Join(':', Random.Shared.GetItems(Enumerable.Range(0, 256).ToArray(), 4).Select(b => b.ToString("x2")))}";
        ExternalProgram.Run("/usr/sbin/ip", "link", "add", Bridge, "address", address, "type", "bridge").ShouldSucceed();
        ExternalProgram.Run("/usr/sbin/ip", "link", "set", Bridge, "up").ShouldSucceed();
        try
        {
            AmberCli.Run("cluster", "init", "--dir", Cluster).ShouldSucceed();
            if (leaseTtlSeconds is int ttl)
            {
                Etcd = new TestEtcd(_dir["etcd"], Cluster, Bridge, [.. Enumerable.Range(1, etcdMembers).Select(Address)]);
                _store = $" --etcd {Etcd.Url} --lease-ttl {ttl}";
            }
            for (int i = 0; i < names.Length; i++)
            {
                AmberCli.Run("node", "add", names[i], "--cluster", Cluster).ShouldSucceed();
                _started[names[i]] = (11 + i, environment?.GetValueOrDefault(names[i]));
                _nodes[names[i]] = StartNode(names[i], 11 + i, Cluster, environment?.GetValueOrDefault(names[i]), homeSize: homeSizes?.GetValueOrDefault(names[i]));
            }
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    /// <summary>The cluster's directory: its CA and every node's certificate.</summary>
    public string Cluster => _dir["cluster"];

    public string Bridge { get; }

    /// <summary>The cluster's store, if the nodes were made with one.</summary>
    public TestEtcd? Etcd { get; }

    public TestDir Dir => _dir;

    public TestNode this[string name] => _nodes[name];

    /// <summary>
    /// Node <paramref name="name"/>, killed (<see cref="TestNode.Kill"/>), booted again: new namespaces,
    /// its agent on the home it had (its disk), with what it left there. <paramref name="environment"/>
    /// replaces the agent's extra environment (null: none).
    /// </summary>
    public TestNode Restart(string name, IReadOnlyDictionary<string, string>? environment = null)
    {
        Assert.False(_nodes[name].IsRunning, $"node {name} still runs");
        File.Delete(Path.Combine(_dir[name], "go"));
        // A log of its own: what the node logged before is not what its new agent says.
        string log = Path.Combine(_dir[name], "agent.log");
        File.Move(log, Path.Combine(_dir[name], $"agent-{DateTime.UtcNow:HHmmss.fff}.log"));
        _started[name] = (_started[name].Host, environment);
        return _nodes[name] = StartNode(name, _started[name].Host, Cluster, environment);
    }

    /// <summary>Cuts node <paramref name="name"/> off the bridge (its veth's host end down), or joins it again.</summary>
    public void SetLink(string name, bool up) =>
        ExternalProgram.Run("/usr/sbin/ip", "link", "set", _linkOf[name], up ? "up" : "down").ShouldSucceed();

    /// <summary>
    /// Limits what goes to node <paramref name="name"/> to <paramref name="mbit"/> Mbit/s (a token
    /// bucket on its veth's host end), so that a transfer to it lasts long enough to be cut.
    /// </summary>
    public void Throttle(string name, int mbit) =>
        ExternalProgram.Run("/usr/sbin/tc", "qdisc", "replace", "dev", _linkOf[name], "root", "tbf", "rate", $"{mbit}mbit", "burst", "256kb", "latency", "400ms").ShouldSucceed();

    /// <summary>
    /// Fills node <paramref name="name"/>'s home (a file system of its own: <c>homeSizes</c>) up to
    /// <paramref name="leaveBytes"/> free, whatever its files take already.
    /// </summary>
    public void FillHome(string name, long leaveBytes)
    {
        string home = _nodes[name].Home.Home!;
        ExternalProgram.Run("/usr/bin/nsenter", "-t", _nodes[name].Pid.ToString(CultureInfo.InvariantCulture), "-m", "/bin/sh", "-c",
            $"fallocate -l $(( $(df -B1 --output=avail {home} | tail -1) - {leaveBytes} )) {home}/filler").ShouldSucceed();
    }

    /// <summary>An address of the test's /24, with its prefix length (hosts 11... are the nodes', 50 the client's, 1 the store's).</summary>
    public string Address(int host) => $"10.215.{_subnet}.{host}/24";

    /// <summary>
    /// A node that is no node of this cluster: its certificate, named <paramref name="name"/> (a
    /// member's name, say), is another CA's. Its agent runs as the others do.
    /// </summary>
    public TestNode Stranger(string name, int host)
    {
        string other = _dir["other-cluster"];
        if (!Directory.Exists(other))
            AmberCli.Run("cluster", "init", "--dir", other).ShouldSucceed();
        AmberCli.Run("node", "add", name, "--cluster", other).ShouldSucceed();
        var node = StartNode(name + "-stranger", host, other, null, certificateName: name);
        _nodes[name + "-stranger"] = node;
        return node;
    }

    private TestNode StartNode(string name, int host, string cluster, IReadOnlyDictionary<string, string>? extra, string? certificateName = null, string? homeSize = null)
    {
        string dir = Directory.CreateDirectory(_dir[name]).FullName;
        string home = Path.Combine(dir, "home");
        string listen = $"{Address(host).Split('/')[0]}:7411";
        string go = Path.Combine(dir, "go");
        string environment = string.Join(' ', new Dictionary<string, string>(extra ?? new Dictionary<string, string>()) { ["AMBER_HOME"] = home }
            .Select(e => $"{e.Key}={e.Value}"));
        // The node's own /sys (sysfs shows the interfaces of the namespace that mounts it), cgroups under it, /run.
        Directory.CreateDirectory(home);
        string script = "mount -t sysfs none /sys && mount -t cgroup2 none /sys/fs/cgroup && mount -t tmpfs -o mode=755 none /run && ip link set lo up"
            + (homeSize is null ? "" : $" && mount -t tmpfs -o size={homeSize},mode=755 none {home}") + " && echo READY"
            + $" && while [ ! -e {go} ]; do sleep 0.02; done; exec env {environment} {Repo.Amber} agent --listen {listen} --cluster {cluster} --node {certificateName ?? name}{_peerTimeout}{_store}";
        var unshare = TargetProcess.Start("/usr/bin/unshare", ["--net", "--pid", "--fork", "--mount", "--mount-proc", "--", "/bin/sh", "-c", script], dir, logName: "agent.log");
        unshare.WaitForLine(l => l == "READY", "the node's namespaces");
        int pid = 0;
        GroupHome.WaitUntil(() => (pid = Children(unshare.Pid).FirstOrDefault()) > 0, "the node's first process");
        string link = $"{Bridge}{_links.Count}";
        _linkOf[name] = link;
        ExternalProgram.Run("/usr/sbin/ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", pid.ToString(CultureInfo.InvariantCulture)).ShouldSucceed();
        _links.Add(link);
        ExternalProgram.Run("/usr/sbin/ip", "link", "set", link, "master", Bridge, "up").ShouldSucceed();
        Inside(pid, "ip", "address", "add", Address(host), "dev", "eth0");
        Inside(pid, "ip", "link", "set", "eth0", "up");
        File.WriteAllText(go, "");
        var node = new TestNode(name, listen, AmberHome.For(home), unshare, pid);
        unshare.WaitForLine(l => l.Contains("listening on " + node.Home.ControlSocket, StringComparison.Ordinal), $"node {name}'s agent to listen");
        return node;
    }

    /// <summary>The client namespace's first process (started on first use): programs run in it with <see cref="InClient"/>.</summary>
    public int ClientPid
    {
        get
        {
            if (_client is null)
            {
                string dir = Directory.CreateDirectory(_dir["client"]).FullName;
                _client = TargetProcess.Start("/usr/bin/unshare", ["--net", "--", "/bin/sh", "-c", "ip link set lo up && echo READY && exec sleep 100000"], dir, logName: "client.log");
                _client.WaitForLine(l => l == "READY", "the client's namespace");
                string link = $"{Bridge}c";
                ExternalProgram.Run("/usr/sbin/ip", "link", "add", link, "type", "veth", "peer", "name", "eth0", "netns", _client.Pid.ToString(CultureInfo.InvariantCulture)).ShouldSucceed();
                _links.Add(link);
                ExternalProgram.Run("/usr/sbin/ip", "link", "set", link, "master", Bridge, "up").ShouldSucceed();
                Inside(_client.Pid, "ip", "address", "add", Address(50), "dev", "eth0");
                Inside(_client.Pid, "ip", "link", "set", "eth0", "up");
            }
            return _client.Pid;
        }
    }

    /// <summary>A program in the client's namespace, its output in <paramref name="workDir"/>/<paramref name="logName"/>.</summary>
    public TargetProcess InClient(string program, IReadOnlyList<string> args, string workDir, string logName) =>
        TargetProcess.Start("/usr/bin/nsenter", ["-t", ClientPid.ToString(CultureInfo.InvariantCulture), "-n", program, .. args], workDir, logName: logName);

    private static void Inside(int pid, params string[] command) =>
        ExternalProgram.Run("/usr/bin/nsenter", ["-t", pid.ToString(CultureInfo.InvariantCulture), "-n", .. command]).ShouldSucceed();

    private static List<int> Children(int pid)
    {
        try
        {
            return [.. File.ReadAllText($"/proc/{pid}/task/{pid}/children").Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(p => int.Parse(p, CultureInfo.InvariantCulture))];
        }
        catch (IOException)
        {
            return [];
        }
    }

    public void Dispose()
    {
        foreach (var node in _nodes.Values)
            node.Kill();
        _client?.Dispose();
        Etcd?.Dispose();
        foreach (string link in _links)
            ExternalProgram.Run("/usr/sbin/ip", "link", "delete", link);
        ExternalProgram.Run("/usr/sbin/ip", "link", "delete", Bridge);
        _dir.Dispose();
    }
}

/// <summary>A node of <see cref="TestNodes"/>: its agent's address, its home, the CLI as its users run it.</summary>
public sealed class TestNode(string name, string listen, AmberHome home, TargetProcess unshare, int pid)
{
    public string Name { get; } = name;

    /// <summary>Its agent's ADDR:PORT.</summary>
    public string Listen { get; } = listen;

    public AmberHome Home { get; } = home;

    /// <summary>Its first process: its agent, PID 1 of its PID namespace.</summary>
    public int Pid { get; } = pid;

    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string> { ["AMBER_HOME"] = Home.Home! };

    /// <summary>The CLI as a user of the node runs it: in its mount namespace (where its home may be a file system of its own).</summary>
    public AmberRun Amber(params string[] args) => Start(args).Wait(TimeSpan.FromMinutes(3));

    public RunningAmber Start(params string[] args) =>
        ExternalProgram.Start("/usr/bin/nsenter", ["-t", Pid.ToString(System.Globalization.CultureInfo.InvariantCulture), "-m", Repo.Amber, .. args], null, Environment);

    /// <summary>
    /// A shell command line that runs the CLI in the node's mount and PID namespaces, as a user of
    /// the node whose coordinator sees its PID (amber migrate --to-file, amber receive: it reopens the
    /// CLI's fds).
    /// </summary>
    public string CommandLine(params string[] args) =>
        $"/usr/bin/nsenter -t {Pid} -m -p /usr/bin/env AMBER_HOME={Home.Home} {Repo.Amber} {string.Join(' ', args)}";

    /// <summary>A path as the node sees it (its mount namespace, through its first process's root).</summary>
    public string Inside(string path) => $"/proc/{Pid}/root{path}";

    /// <summary>The processes of a group of this node (host PIDs).</summary>
    public List<int> Members(string group) => Cgroup.Open(Home.Cgroup(group))?.Processes() ?? [];

    /// <summary>What its agent has logged.</summary>
    public string Log => File.Exists(unshare.LogPath) ? File.ReadAllText(unshare.LogPath) : "";

    public bool IsRunning => unshare.IsRunning;

    /// <summary>Kills the node: its agent is its PID namespace's first process, so every process of it dies too.</summary>
    public void Kill()
    {
        Spawner.Kill(Pid, 9);
        unshare.Dispose();
    }
}
