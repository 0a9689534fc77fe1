using System.Text.Json;
using System.Text.Json.Serialization;
using Microsoft.Extensions.Logging;

namespace Amber.Transport.Cluster;

/// <summary>
/// This node in the cluster's store (etcd), kept there by its agent: <c>/amber/nodes/NAME</c>, what
/// the node is and runs (<see cref="NodeRecord"/>), under a lease renewed every third of its TTL, so
/// that the key goes by itself when the node dies or is cut off from the store for longer than
/// that; and <c>/amber/members/NAME</c>, under no lease, so that a node that died is still listed.
/// The store out of reach changes nothing for the groups: they run on, and the node registers again
/// once it answers.
/// </summary>
public sealed class NodeRegistration : IDisposable
{
    /// <summary>Where the live nodes are: NAME under it, each under its lease.</summary>
    public const string NodesPrefix = "/amber/nodes/";

    /// <summary>The names of the nodes the store lists live now (their leases not run out).</summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static HashSet<string> LiveNames(EtcdClient store) =>
        store.Range(NodesPrefix).Select(e => e.Key[NodesPrefix.Length..]).ToHashSet(StringComparer.Ordinal);

    /// <summary>Where every node that joined is, live or not: NAME under it.</summary>
    public const string MembersPrefix = "/amber/members/";

    /// <summary>Why a lease TTL will not do (under 2 s a renewal every third of it is too close; over an hour a dead node is listed long), or null.</summary>
    public static string? LeaseTtlProblem(int seconds) => seconds is >= 2 and <= 3600 ? null : $"--lease-ttl {seconds}: give 2 to 3600 seconds";

    private readonly EtcdClient _store;
    private readonly string _name;
    private readonly int _ttl;
    private readonly Func<NodeRecord> _describe;
    private readonly ILogger _logger;
    private readonly Action? _reached;
    private readonly Action? _registered;
    private long _renewedTicks;
    private long _failingTicks;
    private readonly CancellationTokenSource _stop = new();
    private readonly AutoResetEvent _changed = new(false);
    private Thread? _thread;
    private long _lease;
    private string _written = "";
    private bool _unreachable;

    /// <param name="store">The cluster's store; disposed with this.</param>
    /// <param name="name">This node's name.</param>
    /// <param name="ttlSeconds">How long the node stays listed as live without renewing its lease.</param>
    /// <param name="describe">What the node is and runs now (asked at every renewal; written when it changed).</param>
    /// <param name="logger">Where registering, and the store out of reach, are said.</param>
    /// <param name="reached">Called after every renewal that reached the store, on the registration's thread (what waited for the store, done then).</param>
    /// <param name="registered">Called each time the node is registered under a new lease (its first, or after it lost one), before <paramref name="reached"/>.</param>
    public NodeRegistration(EtcdClient store, string name, int ttlSeconds, Func<NodeRecord> describe, ILogger logger, Action? reached = null, Action? registered = null)
    {
        _reached = reached;
        _registered = registered;
        _store = store;
        _name = name;
        _ttl = ttlSeconds;
        _describe = describe;
        _logger = logger;
    }

    /// <summary>The node's lease now (0: not registered, the store out of reach since it started): what it holds in the store for as long as it lives goes under it.</summary>
    public long Lease => Volatile.Read(ref _lease);

    /// <summary>Registers, and keeps it up, on a thread of its own (the store out of reach is logged; the agent does not wait for it).</summary>
    public void Start()
    {
        _thread = new Thread(() =>
        {
            do
                Renew();
            while (WaitHandle.WaitAny([_stop.Token.WaitHandle, _changed], TimeSpan.FromSeconds(_ttl / 3.0)) != 0);
        })
        { IsBackground = true, Name = "amber-registration" };
        _thread.Start();
    }

    /// <summary>When the node last renewed its lease (or registered), by this machine's clock: the store knows it live for a TTL after.</summary>
    public DateTime LastRenewed => new(Interlocked.Read(ref _renewedTicks), DateTimeKind.Utc);

    /// <summary>Since when the node's renewals fail (the first that did, since the last that went through); null while they go through.</summary>
    public DateTime? FailingSince => Interlocked.Read(ref _failingTicks) is long ticks and not 0 ? new DateTime(ticks, DateTimeKind.Utc) : null;

    /// <summary>The lease's TTL.</summary>
    public TimeSpan Ttl => TimeSpan.FromSeconds(_ttl);

    /// <summary>What the node runs changed (a part of a group made here): renewed and written now, not at the next third of the TTL.</summary>
    public void Changed() => _changed.Set();

    private void Renew()
    {
        var asked = DateTime.UtcNow;
        try
        {
            // The lease first: describing the node reads its groups' stores, which a checkpoint may keep busy.
            if (_lease != 0)
            {
                if (_store.KeepAlive(_lease) == 0)
                {
                    _logger.LeaseLost(_name);
                    Volatile.Write(ref _lease, 0);
                }
                else
                {
                    Interlocked.Exchange(ref _renewedTicks, asked.Ticks); // renewed: whatever follows, the node is live until then + TTL
                }
            }
            string record = JsonSerializer.Serialize(_describe(), NodeJson.Default.NodeRecord);
            if (_lease == 0)
            {
                long lease = _store.GrantLease(_ttl);
                _store.Put(MembersPrefix + _name, _name);
                _store.Put(NodesPrefix + _name, record, lease);
                _written = record;
                Volatile.Write(ref _lease, lease);
                Interlocked.Exchange(ref _renewedTicks, asked.Ticks);
                _logger.Registered(_name, NodesPrefix + _name, lease, _ttl);
                _registered?.Invoke();
            }
            else if (record != _written)
            {
                _store.Put(NodesPrefix + _name, record, _lease);
                _written = record;
            }
            _unreachable = false;
            Interlocked.Exchange(ref _failingTicks, 0);
            _reached?.Invoke();
        }
        catch (EtcdException e)
        {
            Interlocked.CompareExchange(ref _failingTicks, asked.Ticks, 0);
            if (!_unreachable)
                _logger.StoreUnreachable(e.Message);
            _unreachable = true; // said once per outage; the lease, if it expired meanwhile, is found gone at the next renewal
        }
    }

    /// <summary>Stops renewing and ends the lease: the node leaves the live ones at once (its member entry stays).</summary>
    public void Dispose()
    {
        _stop.Cancel();
        _thread?.Join();
        if (_lease != 0)
        {
            try
            {
                _store.Revoke(_lease);
            }
            catch (EtcdException)
            {
                // out of reach: the lease runs out by itself
            }
        }
        _store.Dispose();
        _stop.Dispose();
        _changed.Dispose();
    }
}

/// <summary>A node as the cluster's store lists it: its agent's address, what it has, the groups it runs.</summary>
public sealed class NodeRecord
{
    /// <summary>Its name (its certificate's).</summary>
    public string Name { get; set; } = "";

    /// <summary>Its agent's ADDR:PORT.</summary>
    public string Address { get; set; } = "";

    /// <summary>Its processors.</summary>
    public int Cpus { get; set; }

    /// <summary>Its memory.</summary>
    public long MemoryBytes { get; set; }

    /// <summary>When its agent started (Unix ms).</summary>
    public long StartedUnixMs { get; set; }

    /// <summary>The groups it runs, by name.</summary>
    public List<NodeGroup> Groups { get; set; } = [];

    /// <summary>Live node <paramref name="node"/>'s record in the store, or null if none (not live, or not an agent's).</summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static NodeRecord? Read(EtcdClient store, string node) =>
        store.Get(NodeRegistration.NodesPrefix + node) is { } entry ? Parse(entry.Value) : null;

    /// <summary>The record <paramref name="json"/> holds, or null if it is not one (a key not put there by an agent).</summary>
    public static NodeRecord? Parse(string json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, NodeJson.Default.NodeRecord);
        }
        catch (JsonException)
        {
            return null;
        }
    }
}

/// <summary>A group of a node: its live processes there and its latest checkpoint that brings it back whole.</summary>
public sealed class NodeGroup
{
    /// <summary>The group's name.</summary>
    public string Name { get; set; } = "";

    /// <summary>The group across nodes it is a part of, if its name is not that group's (a part that came from a lost node: <see cref="Coordinator.Groups.GroupConfig.PartOf"/>).</summary>
    public string PartOf { get; set; } = "";

    /// <summary>The group across nodes it is a part of: its <see cref="PartOf"/>, or its own name.</summary>
    [JsonIgnore]
    public string Across => PartOf.Length > 0 ? PartOf : Name;

    /// <summary>PIDs of its live processes, as the node sees them.</summary>
    public List<int> Processes { get; set; } = [];

    /// <summary>Its latest whole checkpoint's id ("": none).</summary>
    public string Latest { get; set; } = "";

    /// <summary>When that checkpoint was taken (Unix ms; 0: none).</summary>
    public long LatestUnixMs { get; set; }
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(NodeRecord))]
internal sealed partial class NodeJson : JsonSerializerContext;

/// <summary>A node that joined the cluster: live (its lease renewed, <see cref="LeaseLeftSeconds"/> of <see cref="LeaseSeconds"/> left) or not, and what it last said it runs.</summary>
public sealed record NodeStatus(string Name, bool Alive, long LeaseLeftSeconds, long LeaseSeconds, NodeRecord? Record);

/// <summary>The cluster as its store has it (amber cluster status).</summary>
public static class ClusterStatus
{
    /// <summary>Every node that joined, by name, the live ones with what they run.</summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static IReadOnlyList<NodeStatus> Read(EtcdClient store)
    {
        var live = store.Range(NodeRegistration.NodesPrefix).ToDictionary(e => e.Key[NodeRegistration.NodesPrefix.Length..]);
        var names = store.Range(NodeRegistration.MembersPrefix).Select(e => e.Key[NodeRegistration.MembersPrefix.Length..]).Union(live.Keys).Order(StringComparer.Ordinal);
        var nodes = new List<NodeStatus>();
        foreach (string name in names)
        {
            if (!live.TryGetValue(name, out var entry))
            {
                nodes.Add(new NodeStatus(name, false, 0, 0, null));
                continue;
            }
            var record = NodeRecord.Parse(entry.Value); // not an agent's: listed, with nothing of it
            var (left, granted) = entry.Lease == 0 ? (0L, 0L) : store.TimeToLive(entry.Lease);
            nodes.Add(new NodeStatus(name, left > 0, left, granted, record));
        }
        return nodes;
    }
}
