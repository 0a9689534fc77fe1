using System.Globalization;
using System.Text.Json;
using Amber.Coordinator.Control;
using Amber.Coordinator.Daemon;
using Amber.Coordinator.Groups;
using Amber.Transport.Peers;
using Microsoft.Extensions.Logging;

namespace Amber.Transport.Cluster;

/// <summary>
/// amber checkpoint --group and amber restore --group of a group whose members run on several nodes,
/// led by this node: the group's leader in the cluster's store, or made so now
/// (<see cref="GroupCatalog.Campaign"/>). A checkpoint is one barrier across the nodes the store lists
/// the group on (<see cref="BarrierAcrossNodes"/>): every node freezes its members and reads them
/// out, and none runs on before all have; once every part is committed, the checkpoint goes into the
/// group's catalog in one transaction, only while this node leads it: whole, or not at all. A restore
/// brings back every node's part of a checkpoint of the catalog, each node's members made and held
/// until all are, then released together: the whole group runs, or nothing of it.
/// </summary>
internal sealed class GroupLeader(NodeServices services, NodeIdentity identity, string address, EtcdClient store, StoreView view, long lease, TimeSpan peerTimeout, ILogger logger)
{
    /// <summary>The live nodes other than <paramref name="self"/>, as the store lists them, by name.</summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static List<NodeRecord> LiveNodes(EtcdClient store, string self) =>
        [.. store.Range(NodeRegistration.NodesPrefix)
            .Select(e => NodeRecord.Parse(e.Value))
            .OfType<NodeRecord>()
            .Where(n => n.Name != self)
            .OrderBy(n => n.Name, StringComparer.Ordinal)];

    /// <summary>Those of <paramref name="nodes"/> that run members of <paramref name="group"/>.</summary>
    public static List<NodeRecord> Running(List<NodeRecord> nodes, string group) =>
        [.. nodes.Where(n => n.Groups.Any(g => g.Name == group && g.Processes.Count > 0))];

    /// <summary>This node leads the group (made so if no node does), or why not.</summary>
    private string? Lead(string name)
    {
        if (lease == 0)
            return $"group {name} runs on other nodes too, and this node is not registered in the cluster's store yet: try again in a moment";
        string leader = GroupCatalog.Campaign(store, name, identity.Name, lease);
        if (leader == identity.Name)
            view.Led(name);
        return leader == identity.Name ? null
            : leader.Length == 0 ? $"group {name}: its leader just went; try again"
            : $"node {leader} leads group {name}: its operations across nodes are done there (amber ... --group {name} on node {leader})";
    }

    /// <param name="group">The group, whose Busy the caller holds.</param>
    /// <param name="request">The checkpoint asked for.</param>
    /// <param name="others">The other nodes that run members of it.</param>
    /// <param name="progress">Where this node's part says how far it is.</param>
    /// <param name="storeAway">
    /// The store is out of reach, and this node led the group when it last saw it: the checkpoint is
    /// taken across <paramref name="others"/> as last seen, and its entry kept here until the store answers.
    /// </param>
    public ControlResponse Checkpoint(GroupRuntime group, CheckpointRequest request, List<NodeRecord> others, Action<ProgressSample>? progress, bool storeAway = false)
    {
        string name = group.Config.Name;
        string self = identity.Name;
        if (request.Stop)
            return ControlResponse.Failure($"group {name} runs on nodes {string.Join(", ", others.Select(n => n.Name).Prepend(self))}: amber checkpoint --stop across nodes is not supported yet (stop its members on each node)");
        if (!storeAway && Lead(name) is { } notLeader)
            return ControlResponse.Failure(notLeader);
        // Each part is copied to the next node of the checkpoint, by name, round the ring.
        var ring = others.Append(new NodeRecord { Name = self, Address = address }).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        NodeRecord BuddyOf(string node) => ring[(ring.FindIndex(n => n.Name == node) + 1) % ring.Count];
        List<string> copies = [];
        var copyWarnings = new List<string>();
        var outcome = BarrierAcrossNodes.Run(self, barriers =>
            {
                var taken = services.Checkpoint(group, request.Full, progress, barrier: new PartBarrier(barriers[0], barriers[1]));
                if (taken.Ok)
                    copies = NodeParts.Copy(group.Store, name, taken.Stdout[0], BuddyOf(self), identity, peerTimeout, copyWarnings);
                return taken;
            },
            [.. others.Select(n => (n, new PeerMessage
            {
                Op = Ops.CheckpointPart, Name = name, Mode = request.Full ? "full" : "", CopyTo = BuddyOf(n.Name).Name, CopyAddress = BuddyOf(n.Name).Address,
            }))], rounds: 2, Ops.Done, identity, peerTimeout);
        if (outcome.Abandoned is { } abandoned)
        {
            logger.AcrossNodesAbandoned(name, abandoned);
            return ControlResponse.Failure($"checkpoint of group {name} across nodes abandoned: {abandoned}; every member runs on, nothing was kept");
        }
        var failures = Failures(outcome);
        if (failures.Count > 0)
        {
            logger.AcrossNodesAbandoned(name, string.Join("; ", failures));
            return ControlResponse.Failure($"checkpoint of group {name} across nodes not recorded: {string.Join("; ", failures)}; every member runs on (the parts taken stay in their nodes' stores, in no checkpoint across nodes)");
        }
        var mine = NodeParts.PartOf(self, outcome.Local);
        mine.Copies = copies;
        var parts = outcome.Remote.Select(r => new CatalogPart
        {
            Node = r.Node, Checkpoint = r.Done!.Checkpoints.FirstOrDefault() ?? "", Processes = r.Done.Processes, Bytes = r.Done.Bytes, FrozenMs = r.Done.Ms,
            FrozenAtUnixMs = r.Done.FrozenAtUnixMs, Copies = r.Done.Copies,
        }).Append(mine).ToList();
        double barrierMs = outcome.RoundMs[^1];
        var now = DateTimeOffset.UtcNow;
        var entry = new CatalogEntry
        {
            Id = GroupCatalog.NewId(now, self), Group = name, Leader = self, CreatedUnixMs = now.ToUnixTimeMilliseconds(),
            BarrierMs = Math.Round(barrierMs, 1), FreezeSpreadMs = Math.Round(parts.Max(p => p.FrozenAtUnixMs) - parts.Min(p => p.FrozenAtUnixMs), 1),
            Parts = [.. parts.OrderBy(p => p.Node, StringComparer.Ordinal)],
        };
        // Recorded now; or, the store away since this node was the group's leader, kept until it answers.
        bool kept = storeAway;
        if (!storeAway)
        {
            try
            {
                if (!GroupCatalog.Record(store, entry, self))
                    return ControlResponse.Failure($"checkpoint of group {name} across nodes taken but not recorded in the cluster's store: this node no longer leads the group (its lease ran out); every member runs on");
            }
            catch (EtcdException)
            {
                kept = true;
            }
        }
        if (kept)
        {
            try
            {
                view.Keep(entry);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                return ControlResponse.Failure($"checkpoint of group {name} across nodes taken while the cluster's store is out of reach, and its entry could not be kept here: {e.Message}");
            }
        }
        logger.AcrossNodesTaken(name, entry.Id, entry.Parts.Count, barrierMs, entry.FreezeSpreadMs);
        return new ControlResponse
        {
            Ok = true,
            Stdout = [entry.Id],
            Stderr = [.. Warnings(outcome.Local),
                .. kept ? new[] { "warning: the cluster's store is out of reach: the checkpoint is recorded in its catalog once it answers, if this node still leads the group then" } : [],
                .. copyWarnings.Concat(outcome.Remote.SelectMany(r => r.Done!.Warnings)).Select(w => $"warning: {w}"),
                .. entry.Parts.Select(p => string.Create(CultureInfo.InvariantCulture,
                    $"  node {p.Node}: checkpoint {p.Checkpoint}, {p.Processes.Count} processes, {p.Bytes / 1048576.0:0.0} MiB, frozen {p.FrozenMs:0} ms, {(p.Copies.Count > 0 ? $"copied to {string.Join(", ", p.Copies)}" : "no copy")}")),
                string.Create(CultureInfo.InvariantCulture,
                    $"checkpointed group {name} across {entry.Parts.Count} nodes as {entry.Id}: frozen within {entry.FreezeSpreadMs:0.0} ms of each other, every part read out {barrierMs:0.0} ms after the word to freeze")],
            Report = JsonSerializer.Serialize(entry, CatalogJson.Default.CatalogEntry),
        };
    }

    /// <summary>
    /// The group back on every node of <paramref name="entry"/> (its catalog's checkpoint), released
    /// together; <paramref name="live"/> are the live nodes other than this one.
    /// </summary>
    public ControlResponse Restore(GroupRuntime group, CatalogEntry entry, List<NodeRecord> live, Action<ProgressSample>? progress)
    {
        string name = group.Config.Name;
        string self = identity.Name;
        if (entry.Parts.FirstOrDefault(p => p.Node == self) is not { } mine)
            return ControlResponse.Failure($"checkpoint {entry.Id} of group {name} has no part on this node (its parts: {string.Join(", ", entry.Parts.Select(p => p.Node))}): restore it from one of those");
        var gone = entry.Parts.Where(p => p.Node != self && live.All(n => n.Name != p.Node)).Select(p => p.Node).ToList();
        if (gone.Count > 0)
            return ControlResponse.Failure($"checkpoint {entry.Id} of group {name} has parts on node{(gone.Count > 1 ? "s" : "")} {string.Join(", ", gone)}, which the cluster's store does not list as live");
        if (Lead(name) is { } notLeader)
            return ControlResponse.Failure(notLeader);
        if (group.LiveProcesses() is { Count: > 0 } running)
            return ControlResponse.Failure($"group {name} is running here ({running.Count} processes); stop it first");
        if (group.Store.Find(mine.Checkpoint) is not { } checkpoint)
            return ControlResponse.Failure($"group {name} has no checkpoint {mine.Checkpoint} here (its part of {entry.Id})");
        var remotes = entry.Parts.Where(p => p.Node != self)
            .Select(p => (live.First(n => n.Name == p.Node), new PeerMessage { Op = Ops.RestorePart, Name = name, Checkpoints = [p.Checkpoint] })).ToList();
        var outcome = BarrierAcrossNodes.Run(self, barriers => services.Restore(group, checkpoint, barriers[0], progress: progress), remotes, rounds: 1, Ops.Running, identity, peerTimeout);
        if (outcome.Abandoned is { } abandoned)
        {
            logger.AcrossNodesAbandoned(name, abandoned);
            return ControlResponse.Failure($"restore of group {name} across nodes from {entry.Id} abandoned: {abandoned}; nothing of it runs");
        }
        var failures = Failures(outcome);
        if (failures.Count > 0)
            return ControlResponse.Failure($"restore of group {name} across nodes from {entry.Id}: released, but {string.Join("; ", failures)}");
        var roots = outcome.Remote.Select(r => (r.Node, Roots: r.Done!.Roots)).Append((Node: self, Roots: NodeParts.RootsOf(outcome.Local))).OrderBy(r => r.Node, StringComparer.Ordinal).ToList();
        logger.AcrossNodesRestored(name, entry.Id, roots.Count, outcome.RoundMs[0]);
        return new ControlResponse
        {
            Ok = true,
            Stdout = [.. roots.Select(r => $"{r.Node} {string.Join(' ', r.Roots)}")],
            Stderr = [.. Warnings(outcome.Local),
                string.Create(CultureInfo.InvariantCulture, $"restored group {name} across {roots.Count} nodes from {entry.Id}: every part made in {outcome.RoundMs[0]:0.0} ms, then released together")],
            Report = ReportJson.Write(w =>
            {
                w.WriteStartObject();
                w.WriteString("group", name);
                w.WriteString("checkpoint", entry.Id);
                w.WriteNumber("barrierMs", Math.Round(outcome.RoundMs[0], 1));
                w.WriteStartArray("nodes");
                foreach (var (node, pids) in roots)
                {
                    w.WriteStartObject();
                    w.WriteString("node", node);
                    w.WriteNumbers("roots", pids);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }),
        };
    }

    private static List<string> Failures(BarrierAcrossNodes.Outcome outcome) =>
        [.. outcome.Local.Ok ? [] : new[] { $"this node: {outcome.Local.Error}" },
            .. outcome.Remote.Where(r => r.Done is null).Select(r => $"node {r.Node}: {r.Failure}")];

    private static IEnumerable<string> Warnings(ControlResponse response) => response.Stderr.Where(l => l.StartsWith("warning: ", StringComparison.Ordinal));
}
