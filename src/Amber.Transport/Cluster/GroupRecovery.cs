using System.Diagnostics;
using Amber.Coordinator.Control;
using Microsoft.Extensions.Logging;

namespace Amber.Transport.Cluster;

/// <summary>
/// HA across nodes: a watch, on every agent with a cluster's store, over the groups whose latest
/// checkpoint across nodes has a part on a node the store no longer lists as live (its lease ran
/// out: the node died, or was cut off from the store for longer than the TTL). The group's leader
/// (this node, if it holds a part or a copy of one and wins the campaign for the lead: a leader
/// that was lost took its lead with it) restores the whole group from that checkpoint: the lost
/// parts on the nodes that hold their copies, every other part rolled back to the same cut, all
/// released together (<see cref="GroupLeader.Restore"/> with replace), and then takes a checkpoint
/// across the nodes it now runs on, so that a next loss finds copies of every part.
/// <para>
/// A node is taken for lost only once this node has reached the store for longer than a whole TTL
/// without a break: after the store itself was away, every live node has renewed its lease by then,
/// and a node whose key is still missing has failed to for a whole TTL. A checkpoint is restored once
/// by this agent (one that failed is tried again after <see cref="RetryAfter"/>).
/// </para>
/// </summary>
internal sealed class GroupRecovery : IDisposable
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);
    private static readonly TimeSpan RetryAfter = TimeSpan.FromSeconds(5);

    private readonly EtcdClient _store;
    private readonly string _self;
    private readonly TimeSpan _ttl;
    private readonly Func<GroupLeader?> _leader;
    private readonly ILogger _logger;
    private readonly CancellationTokenSource _stop = new();
    private readonly HashSet<string> _restored = new(StringComparer.Ordinal);
    private readonly Dictionary<string, DateTime> _failedAt = new(StringComparer.Ordinal);
    private readonly Thread _thread;
    private DateTime? _reachedSince;

    /// <param name="store">The cluster's store (the agent's; not disposed here).</param>
    /// <param name="self">This node's name.</param>
    /// <param name="ttl">The nodes' lease TTL.</param>
    /// <param name="leader">This node as a group's leader, once it is registered (null before).</param>
    /// <param name="logger">Where lost nodes and restores are said.</param>
    public GroupRecovery(EtcdClient store, string self, TimeSpan ttl, Func<GroupLeader?> leader, ILogger logger)
    {
        _store = store;
        _self = self;
        _ttl = ttl;
        _leader = leader;
        _logger = logger;
        _thread = new Thread(Watch) { IsBackground = true, Name = "amber-recovery" };
    }

    public void Start() => _thread.Start();

    private void Watch()
    {
        while (!_stop.Token.WaitHandle.WaitOne(Poll))
        {
            try
            {
                Check();
            }
            catch (EtcdException)
            {
                _reachedSince = null; // away: a node missing when it is back may just not have renewed yet
            }
            catch (Exception e)
            {
                // The watch never takes the agent down with it (an exception on this thread would).
                _logger.WatchFailed("the watch for lost nodes", e.ToString().ReplaceLineEndings(" | "));
            }
        }
    }

    private void Check()
    {
        var live = NodeRegistration.LiveNames(_store);
        var now = DateTime.UtcNow;
        _reachedSince ??= now;
        if (now - _reachedSince < _ttl + _ttl / 3 || !live.Contains(_self))
            return;
        foreach (var group in GroupCatalog.All(_store))
        {
            // (A group stopped at its latest checkpoint runs nowhere: a node's loss takes nothing from it.)
            if (group.Latest is not { } entry || entry.Stopped || _restored.Contains(entry.Id) || (group.Leader.Length > 0 && group.Leader != _self))
                continue;
            var lost = entry.Parts.Select(p => p.Node).Where(n => !live.Contains(n)).Distinct().Order(StringComparer.Ordinal).ToList();
            // Only a node with something of the group takes it on: a part, or a copy of a lost one.
            if (lost.Count == 0 || !entry.Parts.Any(p => p.Node == _self || p.Copies.Contains(_self)))
                continue;
            if (_failedAt.TryGetValue(entry.Id, out var failed) && now - failed < RetryAfter)
                continue;
            if (_leader() is not { } leader || !leader.Campaign(group.Name))
                continue;
            Recover(leader, entry, lost);
        }
    }

    private void Recover(GroupLeader leader, CatalogEntry entry, List<string> lost)
    {
        var clock = Stopwatch.StartNew();
        string nodes = string.Join(", ", lost);
        // Claimed first, in the transaction that finds them still not live: a node back before it
        // keeps its parts; one back after it ends them (NodeFence).
        if (!GroupCatalog.Claim(_store, entry.Group, _self, lost, entry.Id))
        {
            _failedAt[entry.Id] = DateTime.UtcNow;
            _logger.NotClaimed(entry.Group, nodes);
            return;
        }
        _logger.NodesLost(entry.Group, nodes, entry.Id);
        var live = GroupLeader.LiveNodes(_store, _self);
        var places = leader.Place(entry, live, out _);
        bool lostOnly = entry.NodeLoss == Coordinator.Groups.GroupConfig.LostOnly;
        var restored = leader.Restore(null, entry, live, progress: null, replace: !lostOnly, only: lostOnly ? p => p.Origin.Length > 0 : null);
        if (!restored.Ok)
        {
            _failedAt[entry.Id] = DateTime.UtcNow;
            _logger.RecoveryFailed(entry.Group, nodes, restored.Error);
            return;
        }
        _restored.Add(entry.Id);
        _failedAt.Remove(entry.Id);
        double ms = clock.Elapsed.TotalMilliseconds;
        _logger.Recovered(entry.Group, nodes, entry.Id, ms, string.Join("; ", restored.Stdout));
        // Copies of every part again, where the group runs now (where the restore put them: the
        // store's records of the nodes may not say so yet).
        var parts = places!.Select(p => p.On).ToList();
        var taken = leader.Checkpoint(null, entry.Group, new CheckpointRequest(entry.Group, Stop: false, Full: false), parts, progress: null, nodeLoss: entry.NodeLoss);
        if (taken.Ok)
            _logger.RecoveredCheckpointed(entry.Group, taken.Stdout.FirstOrDefault() ?? "");
        else
            _logger.RecoveredNotCheckpointed(entry.Group, taken.Error);
    }

    public void Dispose()
    {
        _stop.Cancel();
        if (_thread.IsAlive)
            _thread.Join();
        _stop.Dispose();
    }
}
