using System.Text.Json;
using System.Text.Json.Serialization;
using Amber.Coordinator.Groups;

namespace Amber.Transport.Cluster;

/// <summary>
/// What the cluster's store holds of a group that runs on several nodes: its leader (etcd's election
/// <c>/amber/groups/NAME/leader</c>: each campaigner's key under it holds its node's name under that
/// node's lease; the oldest leads, and goes with its node), and its catalog of checkpoints across nodes
/// (<c>/amber/groups/NAME/checkpoints/ID</c>, one <see cref="CatalogEntry"/> each, and
/// <c>/amber/groups/NAME/latest</c>), written in one transaction only while the writer leads, and only
/// once every node has committed its part: an entry is a whole group checkpoint, or there is none. And
/// its settings (<c>/amber/groups/NAME/settings</c>, a <see cref="GroupPolicy"/>), which every node's
/// part of it takes, whichever node leads.
/// </summary>
public static class GroupCatalog
{
    /// <summary>Where the groups are: NAME/ under it.</summary>
    public const string GroupsPrefix = "/amber/groups/";

    /// <summary>The group's election: its leader's key is under it (ELECTION/LEASE, in hex), its value the node's name.</summary>
    public static string Election(string group) => $"{GroupsPrefix}{group}/leader";

    /// <summary>How long a campaign waits to lead: with no leader it leads at once; longer, another leads.</summary>
    private static readonly TimeSpan CampaignWait = TimeSpan.FromSeconds(1);

    /// <summary>The key whose value is the id of the group's latest checkpoint across nodes.</summary>
    public static string LatestKey(string group) => $"{GroupsPrefix}{group}/latest";

    /// <summary>
    /// The key that says the parts of the group on <paramref name="node"/> were taken over (restored
    /// elsewhere) while the node was not live: its value the checkpoint across nodes they came back from.
    /// The node, live again, ends what it still runs of them, and deletes the key.
    /// </summary>
    public static string TakenKey(string group, string node) => $"{GroupsPrefix}{group}/taken/{node}";

    /// <summary>
    /// The parts of the group on <paramref name="lost"/> claimed by <paramref name="leader"/> to be
    /// restored elsewhere from <paramref name="entry"/>: only while it leads the group and none of
    /// those nodes is live (one transaction), so that a node that comes back before the claim keeps its
    /// parts, and one that comes back after it knows they were taken (<see cref="TakenKey"/>). Whether it held.
    /// </summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static bool Claim(EtcdClient store, string group, string leader, IReadOnlyList<string> lost, string entry) =>
        store.PutAllIfLeads(Election(group), leader, [.. lost.Select(n => (TakenKey(group, n), entry))], [.. lost.Select(n => NodeRegistration.NodesPrefix + n)]);

    /// <summary>The key of the group's settings, which every node's part of it takes (<see cref="GroupPolicy"/>).</summary>
    public static string SettingsKey(string group) => $"{GroupsPrefix}{group}/settings";

    /// <summary>
    /// The group's settings as the store keeps them (null: none, or none that can be a group's, which
    /// the next written replace) and the revision they were written at (0: none written).
    /// </summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static (GroupPolicy? Policy, long Revision) Settings(EtcdClient store, string group) =>
        store.Get(SettingsKey(group)) is { } found ? (ParsePolicy(found.Value), found.ModRevision) : (null, 0);

    /// <summary>Writes the group's settings, if and only if they are still those of <paramref name="revision"/> (0: none): whether it did.</summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static bool SetSettings(EtcdClient store, string group, GroupPolicy policy, long revision) =>
        store.PutIfRevision(SettingsKey(group), JsonSerializer.Serialize(policy, GroupPolicyJson.Default.GroupPolicy), revision);

    /// <summary>
    /// <paramref name="group"/> forgotten (its settings, its catalog, its election), once its last
    /// part was removed on <paramref name="self"/>, so that its name is a new group's again (which
    /// would otherwise take the old one's settings and catalog): only if no other live node lists a part
    /// of it, the latest entry places none on a node that is not live (a lost node's part the leader is
    /// to restore), and neither the settings nor the latest entry changed since they were read (one
    /// transaction). The <c>taken/</c> keys stay: a node that comes back ends what it runs of the group.
    /// Null once forgotten; else why it stays.
    /// </summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static string? Forget(EtcdClient store, string group, string self)
    {
        var live = GroupLeader.LiveNodes(store, self);
        if (live.FirstOrDefault(n => n.Groups.Any(g => g.Across == group)) is { } runs)
            return $"node {runs.Name} runs a part of it";
        var latest = store.Get(LatestKey(group));
        if (latest is not null && Entry(store, group, latest.Value) is { } entry
            && entry.Parts.FirstOrDefault(p => p.Node != self && live.All(n => n.Name != p.Node)) is { } lost)
            return $"its part on node {lost.Node}, which is not live, is to be restored from its latest checkpoint across nodes";
        long settings = store.Get(SettingsKey(group))?.ModRevision ?? 0;
        return store.DeleteAllIfRevisions([SettingsKey(group), LatestKey(group)], [CheckpointsPrefix(group), Election(group) + "/"],
            [(SettingsKey(group), settings), (LatestKey(group), latest?.ModRevision ?? 0)])
            ? null
            : "its settings or its catalog changed meanwhile";
    }

    /// <summary>The settings <paramref name="json"/> holds, or null if it holds none that can be a group's.</summary>
    public static GroupPolicy? ParsePolicy(string json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, GroupPolicyJson.Default.GroupPolicy) is { } policy && policy.Problem() is null ? policy : null;
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Where the group's checkpoints across nodes are: ID under it.</summary>
    public static string CheckpointsPrefix(string group) => $"{GroupsPrefix}{group}/checkpoints/";

    /// <summary>
    /// The group's leader, made <paramref name="node"/> under <paramref name="lease"/> if no node
    /// leads it (a campaign in its election): the leader's name (this node's if it leads now); "" if
    /// none does for the moment (the one found went meanwhile, or it is this node under a lease of
    /// before, which goes with it): the next campaign decides. <paramref name="taken"/>: whether no
    /// node led it when asked, and this one leads it now (it took the lead by this call).
    /// </summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static string Campaign(EtcdClient store, string group, string node, long lease, out bool taken)
    {
        string election = Election(group);
        var leading = store.Leader(election);
        bool none = leading is null;
        taken = false;
        if (none && store.Campaign(election, node, lease, CampaignWait))
        {
            taken = true;
            return node;
        }
        // Another led, or won the campaign with this one (which then waited, and was called off).
        leading ??= store.Leader(election);
        string leader = leading is null || (leading.Value == node && leading.Lease != lease) ? "" : leading.Value;
        taken = none && leader == node;
        return leader;
    }

    /// <summary>The group's leader's name, "" if none leads it.</summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static string Leader(EtcdClient store, string group) => store.Leader(Election(group))?.Value ?? "";

    /// <summary>
    /// Records <paramref name="entry"/> as the group's latest checkpoint across nodes, if
    /// <paramref name="leader"/> still leads it (its lease alive): whether it did.
    /// </summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static bool Record(EtcdClient store, CatalogEntry entry, string leader) =>
        store.PutAllIfLeads(Election(entry.Group), leader,
            [(CheckpointsPrefix(entry.Group) + entry.Id, JsonSerializer.Serialize(entry, CatalogJson.Default.CatalogEntry)), (LatestKey(entry.Group), entry.Id)]);

    /// <summary>The group's latest checkpoint across nodes, or null if it has none.</summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static CatalogEntry? Latest(EtcdClient store, string group) =>
        store.Get(LatestKey(group)) is { } latest ? Entry(store, group, latest.Value) : null;

    /// <summary>The group's checkpoint across nodes <paramref name="id"/>, or null if it has none such.</summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static CatalogEntry? Entry(EtcdClient store, string group, string id) =>
        store.Get(CheckpointsPrefix(group) + id) is { } found ? Parse(found.Value) : null;

    /// <summary>The group's checkpoints across nodes, oldest first (ids sort by time).</summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static IReadOnlyList<CatalogEntry> Checkpoints(EtcdClient store, string group) =>
        [.. store.Range(CheckpointsPrefix(group)).Select(e => Parse(e.Value)).OfType<CatalogEntry>()];

    /// <summary>Every group the store has a leader, a catalog or settings of, by name: its leader now ("": none), its latest checkpoint across nodes, its settings.</summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static IReadOnlyList<GroupAcrossNodes> All(EtcdClient store)
    {
        var groups = new SortedDictionary<string, (EtcdEntry? Leader, string Latest, Dictionary<string, CatalogEntry> Entries, GroupPolicy? Settings)>(StringComparer.Ordinal);
        foreach (var entry in store.Range(GroupsPrefix))
        {
            var parts = entry.Key[GroupsPrefix.Length..].Split('/');
            if (parts.Length < 2)
                continue;
            var group = groups.TryGetValue(parts[0], out var known) ? known : (Leader: null, Latest: "", Entries: new Dictionary<string, CatalogEntry>(), Settings: null);
            if (parts is [_, "leader", _] && (group.Leader is null || entry.CreateRevision < group.Leader.CreateRevision))
                group.Leader = entry; // the election's oldest key, as etcd's election API has it
            else if (parts is [_, "latest"])
                group.Latest = entry.Value;
            else if (parts is [_, "checkpoints", var id] && Parse(entry.Value) is { } checkpoint)
                group.Entries[id] = checkpoint;
            else if (parts is [_, "settings"])
                group.Settings = ParsePolicy(entry.Value);
            groups[parts[0]] = group;
        }
        return [.. groups.Select(g => new GroupAcrossNodes(g.Key, g.Value.Leader?.Value ?? "", g.Value.Entries.GetValueOrDefault(g.Value.Latest), g.Value.Settings,
            [.. g.Value.Entries.Values]))];
    }

    /// <summary>The entry <paramref name="json"/> holds, or null if it is not one.</summary>
    public static CatalogEntry? Parse(string json)
    {
        try
        {
            return JsonSerializer.Deserialize(json, CatalogJson.Default.CatalogEntry);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>How an entry is written (camelCase JSON, as in the store).</summary>
    public static System.Text.Json.Serialization.Metadata.JsonTypeInfo<CatalogEntry> Json => CatalogJson.Default.CatalogEntry;

    /// <summary>A new entry's id: its time (UTC, to the millisecond, so that ids sort as they were taken) and its leader.</summary>
    public static string NewId(DateTimeOffset at, string leader) => $"{at.UtcDateTime:yyyyMMdd'T'HHmmss'.'fff'Z'}-{leader}";
}

/// <summary>A group as the cluster's store has it: its leader ("": none now), its latest checkpoint across nodes (null: none), its settings (null: none), every entry of its catalog.</summary>
public sealed record GroupAcrossNodes(string Name, string Leader, CatalogEntry? Latest, GroupPolicy? Settings, IReadOnlyList<CatalogEntry> Entries)
{
    /// <summary>How many checkpoints its catalog holds.</summary>
    public int Checkpoints => Entries.Count;
}

/// <summary>One checkpoint of a group across nodes: every node's part, taken at one barrier.</summary>
public sealed class CatalogEntry
{
    /// <summary>Its id (<see cref="GroupCatalog.NewId"/>).</summary>
    public string Id { get; set; } = "";

    /// <summary>The group's name.</summary>
    public string Group { get; set; } = "";

    /// <summary>The node that led it.</summary>
    public string Leader { get; set; } = "";

    /// <summary>When it was recorded (Unix ms).</summary>
    public long CreatedUnixMs { get; set; }

    /// <summary>From the leader's word to freeze to the last node's part frozen and read out, in ms.</summary>
    public double BarrierMs { get; set; }

    /// <summary>From the first node's freeze to the last's, in ms (by the nodes' clocks).</summary>
    public double FreezeSpreadMs { get; set; }

    /// <summary>Every node's part, by node name.</summary>
    public List<CatalogPart> Parts { get; set; } = [];

    /// <summary>What a node's loss does to the group: "lost-only" (only its parts restored elsewhere, the others run on); "": the whole group rolled back to this checkpoint (the leader's settings for the group, --node-loss).</summary>
    public string NodeLoss { get; set; } = "";

    /// <summary>The group was stopped at this checkpoint (amber checkpoint --stop): no member runs, and a node's loss brings nothing back.</summary>
    public bool Stopped { get; set; }

    /// <summary>The entry whose checkpoint this one is, its parts placed anew after nodes were lost (their parts restored on others) or after a part was migrated; "": a checkpoint taken.</summary>
    public string Replaces { get; set; } = "";
}

/// <summary>A node's part of a <see cref="CatalogEntry"/>: the checkpoint of the group's members there, in that node's store.</summary>
public sealed class CatalogPart
{
    /// <summary>The node's name.</summary>
    public string Node { get; set; } = "";

    /// <summary>
    /// The group of that node the part is a checkpoint of, if its name is not the group's: a part that
    /// came there from a lost node (<see cref="GroupLeader.AdoptedName"/>).
    /// </summary>
    public string Local { get; set; } = "";

    /// <summary>The name of the node's group the part is of: <see cref="Local"/>, or the group's.</summary>
    public string LocalOr(string group) => Local.Length > 0 ? Local : group;

    /// <summary>The checkpoint's id in that node's store of the group.</summary>
    public string Checkpoint { get; set; } = "";

    /// <summary>The PIDs it saved.</summary>
    public List<int> Processes { get; set; } = [];

    /// <summary>The size of its image.</summary>
    public long Bytes { get; set; }

    /// <summary>How long the node's members were frozen, in ms (until every node had read its own).</summary>
    public double FrozenMs { get; set; }

    /// <summary>When its freeze began (Unix ms, its node's clock).</summary>
    public double FrozenAtUnixMs { get; set; }

    /// <summary>The other nodes that keep a copy of it (<see cref="Replicas"/>).</summary>
    public List<string> Copies { get; set; } = [];

    /// <summary>
    /// The node whose part the copies were made of, if not <see cref="Node"/>: the part was migrated
    /// to <see cref="Node"/> after it was copied (<see cref="MovePlacement"/>), and its copies are
    /// still kept as that node's (<see cref="Replicas.Directory"/>).
    /// </summary>
    public string CopiesOf { get; set; } = "";

    /// <summary>The name its copies are kept under: <see cref="CopiesOf"/>, or <see cref="Node"/>.</summary>
    [JsonIgnore]
    public string CopiedAs => CopiesOf.Length > 0 ? CopiesOf : Node;

    /// <summary>
    /// With <see cref="CopiesOf"/>: the name of the group of that node the copies were made of, if it
    /// is not the group's ("": the group's); the part may have arrived under another name
    /// (<see cref="Local"/>) on a node that runs another part of the group.
    /// </summary>
    public string CopiesOfLocal { get; set; } = "";

    /// <summary>The name of the group its copies are of: <see cref="CopiesOfLocal"/> if the part moved since, else <see cref="Local"/>; or the group's.</summary>
    public string CopiedLocalOr(string group) => (CopiesOf.Length > 0 ? CopiesOfLocal : Local) is { Length: > 0 } local ? local : group;
}

[JsonSourceGenerationOptions(PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(CatalogEntry))]
internal sealed partial class CatalogJson : JsonSerializerContext;
