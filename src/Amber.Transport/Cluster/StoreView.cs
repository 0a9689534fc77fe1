using System.Text.Json;
using Amber.Coordinator.Groups;
using Microsoft.Extensions.Logging;

namespace Amber.Transport.Cluster;

/// <summary>
/// What this node last knew of the cluster's store (the live nodes and what they run, the groups it
/// leads, the groups' settings), refreshed after every renewal of its lease, so that a group it leads is checkpointed across
/// its nodes even while the store is out of reach; and the catalog entries made meanwhile, kept in
/// <c>STATE/catalog-pending/</c> and recorded once the store answers again, each only if this node
/// still leads the group then (its lease, and the leader key under it, survived the outage; if not,
/// another node may lead now, and the entry is dropped: its parts stay in their nodes' stores).
/// </summary>
internal sealed class StoreView(EtcdClient store, string self, string pending, ILogger logger)
{
    private volatile IReadOnlyList<NodeRecord> _nodes = [];
    private volatile HashSet<string> _leads = [];
    private volatile HashSet<string> _across = [];
    private volatile Dictionary<string, GroupAcrossNodes> _groups = [];

    /// <summary>The groups forgotten since the refresh under way began: what it read of them may be from before.</summary>
    private readonly HashSet<string> _forgottenMeanwhile = new(StringComparer.Ordinal);

    /// <summary>The live nodes other than this one, as last seen.</summary>
    public IReadOnlyList<NodeRecord> Nodes => _nodes;

    /// <summary>Whether this node led <paramref name="group"/> when it last saw the store.</summary>
    public bool Leads(string group) => _leads.Contains(group);

    /// <summary>Whether the store had <paramref name="group"/> as a group across nodes (a leader or a catalog) when this node last saw it.</summary>
    public bool IsAcross(string group) => _across.Contains(group);

    /// <summary>The settings of <paramref name="group"/> across nodes when this node last saw the store; null if it had none.</summary>
    public GroupPolicy? Settings(string group) => Group(group)?.Settings;

    /// <summary><paramref name="group"/> as the store had it when this node last saw it (its catalog, its settings); null if it had nothing of it.</summary>
    public GroupAcrossNodes? Group(string group) => _groups.GetValueOrDefault(group);

    /// <summary>The live nodes as an operation just read them.</summary>
    public void Saw(IReadOnlyList<NodeRecord> nodes) => _nodes = nodes;

    /// <summary>This node just took, or found it held, the lead of <paramref name="group"/>.</summary>
    public void Led(string group)
    {
        _leads = [.. _leads, group];
        Joined(group);
    }

    /// <summary>This node just took a part in an operation of <paramref name="group"/> across nodes: a group across nodes, whatever the store said when last seen.</summary>
    public void Joined(string group) => _across = [.. _across, group];

    /// <summary>
    /// <paramref name="group"/>, whose last part here was removed, forgotten in the store if nothing
    /// there keeps it (<see cref="GroupCatalog.Forget"/>), and in this view: what became of it, one line.
    /// </summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public string Forget(string group)
    {
        if (GroupCatalog.Forget(store, group, self) is { } why)
            return $"group {group} stays in the cluster's store: {why}";
        Forgot(group);
        return $"group {group} forgotten in the cluster's store (its settings, its catalog of checkpoints across nodes): no node runs a part of it any more";
    }

    /// <summary><paramref name="group"/> forgotten in the store (its last part removed): of this node's alone, if made again.</summary>
    public void Forgot(string group)
    {
        lock (_forgottenMeanwhile)
            _forgottenMeanwhile.Add(group);
        _leads = [.. _leads.Where(g => g != group)];
        _across = [.. _across.Where(g => g != group)];
        _groups = _groups.Where(g => g.Key != group).ToDictionary(StringComparer.Ordinal);
    }

    /// <summary>
    /// <paramref name="group"/>'s last part here removed while the store was out of reach: forgotten in
    /// this view now (a group of that name made here meanwhile is this node's alone), and in the store
    /// (<see cref="GroupCatalog.Forget"/>, its conditions checked then) once it answers again, before
    /// this node takes any group's settings from it. Noted (0600) until then.
    /// </summary>
    public void ForgetLater(string group)
    {
        Forgot(group);
        using var file = CreatePending(group + ForgetSuffix);
        file.Flush(flushToDisk: true);
    }

    /// <summary>A new file (0600) in <c>catalog-pending/</c>, made if need be (0700).</summary>
    private FileStream CreatePending(string name)
    {
        Directory.CreateDirectory(pending, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        return new FileStream(Path.Combine(pending, name), new FileStreamOptions { Mode = FileMode.Create, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite });
    }

    /// <summary>What names a group to forget in <c>catalog-pending/</c> (NAME.forget).</summary>
    private const string ForgetSuffix = ".forget";

    /// <summary>After a renewal that reached the store: the view refreshed, and the entries that waited recorded.</summary>
    public void Refresh()
    {
        try
        {
            lock (_forgottenMeanwhile)
                _forgottenMeanwhile.Clear();
            ForgetWaiting();
            _nodes = GroupLeader.LiveNodes(store, self);
            var groups = GroupCatalog.All(store);
            lock (_forgottenMeanwhile)
                groups = [.. groups.Where(g => !_forgottenMeanwhile.Contains(g.Name))];
            _leads = [.. groups.Where(g => g.Leader == self).Select(g => g.Name)];
            _across = [.. groups.Select(g => g.Name)];
            _groups = groups.ToDictionary(g => g.Name, StringComparer.Ordinal);
            Flush();
        }
        catch (EtcdException)
        {
            // away again: the next renewal that reaches it tries again
        }
    }

    /// <summary>An entry made while the store was out of reach, kept (0600) until it can be recorded.</summary>
    public void Keep(CatalogEntry entry)
    {
        string path = Path.Combine(pending, $"{entry.Id}.json");
        using (var file = CreatePending($"{entry.Id}.json.tmp"))
        {
            JsonSerializer.Serialize(file, entry, CatalogJson.Default.CatalogEntry);
            file.Flush(flushToDisk: true);
        }
        File.Move(path + ".tmp", path, overwrite: true);
    }

    /// <summary>The groups whose last part here was removed while the store was away, forgotten there now (or said why not).</summary>
    private void ForgetWaiting()
    {
        if (!Directory.Exists(pending))
            return;
        foreach (string path in Directory.EnumerateFiles(pending, "*" + ForgetSuffix))
        {
            string group = Path.GetFileName(path)[..^ForgetSuffix.Length];
            logger.GroupForgotten(group, $"the cluster's store in reach again: {Forget(group)}");
            File.Delete(path);
        }
    }

    private void Flush()
    {
        if (!Directory.Exists(pending))
            return;
        foreach (string path in Directory.EnumerateFiles(pending, "*.json").Order(StringComparer.Ordinal))
        {
            var entry = GroupCatalog.Parse(File.ReadAllText(path));
            if (entry is null)
            {
                logger.CatalogEntryDropped("?", Path.GetFileName(path), "it is not a catalog entry");
            }
            else if (GroupCatalog.Record(store, entry, self))
            {
                logger.CatalogCaughtUp(entry.Group, entry.Id);
            }
            else
            {
                logger.CatalogEntryDropped(entry.Group, entry.Id, "this node no longer leads the group (its lease ran out while the store was away)");
            }
            File.Delete(path);
        }
    }
}
