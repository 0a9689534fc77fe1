using System.Globalization;
using System.Text.Json;
using Amber.Coordinator;
using Amber.Coordinator.Control;
using Amber.Coordinator.Daemon;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Store;
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

    /// <summary>
    /// The parts of <paramref name="group"/> with members running on <paramref name="nodes"/> (other
    /// nodes, as the store lists them), and on this node those other than <paramref name="held"/>
    /// (parts that came here from lost nodes).
    /// </summary>
    public static List<PartOnNode> PartsOf(IEnumerable<NodeRecord> nodes, string group, NodeServices services, NodeRecord self, string? held) =>
        [.. nodes.SelectMany(n => n.Groups.Where(g => g.Across == group && g.Processes.Count > 0).Select(g => new PartOnNode(n, g.Name)))
            .Concat(services.Groups().Where(g => g.Config.Name != held && (g.Config.PartOf == group || g.Config.Name == group) && g.LiveProcesses().Count > 0)
                .Select(g => new PartOnNode(self, g.Config.Name)))
            .OrderBy(p => p.Node.Name, StringComparer.Ordinal).ThenBy(p => p.Local, StringComparer.Ordinal)];

    /// <summary>This node as the store lists it (its name and agent's address).</summary>
    private NodeRecord Self => new() { Name = identity.Name, Address = address };

    /// <summary>Whether this node leads the group (made so if no node does).</summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public bool Campaign(string name) => Lead(name) is null;

    /// <summary>This node leads the group (made so if no node does), or why not.</summary>
    private string? Lead(string name) => Lead(name, out _);

    /// <summary>
    /// The first of <paramref name="nodes"/> the store lists live no longer (its lease ran out), or
    /// null: an operation across nodes gives up on a lost node's part at once, so that its group is
    /// free for the restore that the loss calls for. Null too while the store is out of reach.
    /// </summary>
    private string? Lost(IReadOnlyList<string> nodes)
    {
        try
        {
            var live = NodeRegistration.LiveNames(store);
            return nodes.FirstOrDefault(n => !live.Contains(n));
        }
        catch (EtcdException)
        {
            return null;
        }
    }

    /// <summary>
    /// This node leads the group (made so if no node does), or why not. <paramref name="taken"/>: it
    /// took the lead by this call (none led it): the lead of a node lost since the caller read the live
    /// nodes, perhaps, which it should read again.
    /// </summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public string? Lead(string name, out bool taken)
    {
        taken = false;
        if (lease == 0)
            return $"group {name} runs on other nodes too, and this node is not registered in the cluster's store yet: try again in a moment";
        string leader = GroupCatalog.Campaign(store, name, identity.Name, lease, out taken);
        if (leader == identity.Name)
            view.Led(name);
        return leader == identity.Name ? null
            : leader.Length == 0 ? $"group {name}: its leader just went; try again"
            : $"node {leader} leads group {name}: its operations across nodes are done there (amber ... --group {name} on node {leader})";
    }

    /// <param name="held">This node's part of the group (its group of the group's name), whose Busy the caller holds; null: none (every part is asked for over a link, this node's too).</param>
    /// <param name="name">The group across nodes.</param>
    /// <param name="request">The checkpoint asked for.</param>
    /// <param name="others">Its other parts: on other nodes, and this node's other than <paramref name="held"/>.</param>
    /// <param name="progress">Where this node's part says how far it is.</param>
    /// <param name="storeAway">
    /// The store is out of reach, and this node led the group when it last saw it: the checkpoint is
    /// taken across <paramref name="others"/> as last seen, and its entry kept here until the store answers.
    /// </param>
    /// <param name="nodeLoss">Without <paramref name="held"/>: what a node's loss does to the group (<see cref="CatalogEntry.NodeLoss"/>); with it, its settings say.</param>
    public ControlResponse Checkpoint(GroupRuntime? held, string name, CheckpointRequest request, List<PartOnNode> others, Action<ProgressSample>? progress, bool storeAway = false,
        string nodeLoss = "")
    {
        string self = identity.Name;
        if (!storeAway && Lead(name) is { } notLeader)
            return ControlResponse.Failure(notLeader);
        // Each node's parts are copied to the next node of the checkpoint, by name, round the ring (none with one node).
        var ring = others.Select(p => p.Node).Concat(held is null ? [] : [Self]).DistinctBy(n => n.Name).OrderBy(n => n.Name, StringComparer.Ordinal).ToList();
        NodeRecord? BuddyOf(string node) => ring.Count < 2 ? null : ring[(ring.FindIndex(n => n.Name == node) + 1) % ring.Count];
        List<string> copies = [];
        var copyWarnings = new List<string>();
        var outcome = BarrierAcrossNodes.Run(self, barriers =>
            {
                if (held is null)
                    return PassBarriers(barriers);
                var taken = request.Stop
                    ? NodeParts.CheckpointAndEnd(services, held, request.Full, barriers[0], barriers[1])
                    : services.Checkpoint(held, request.Full, progress, barrier: new PartBarrier(barriers[0], barriers[1]));
                if (taken.Ok && BuddyOf(self) is { } buddy)
                    copies = NodeParts.Copy(held, taken.Stdout[0], buddy, identity, peerTimeout, copyWarnings);
                return taken;
            },
            [.. others.Select(p => (p.Node, new PeerMessage
            {
                Op = Ops.CheckpointPart, Name = p.Local, Mode = request.Full ? "full" : "", Stop = request.Stop, CopyTo = BuddyOf(p.Node.Name)?.Name ?? "", CopyAddress = BuddyOf(p.Node.Name)?.Address ?? "",
            }))], rounds: 2, Ops.Done, identity, peerTimeout, storeAway ? null : Lost);
        if (outcome.Abandoned is { } abandoned)
        {
            logger.AcrossNodesAbandoned(name, abandoned);
            return ControlResponse.Failure($"checkpoint of group {name} across nodes abandoned: {abandoned}; every member runs on, nothing was kept");
        }
        var failures = Failures(outcome, others.Select(p => p.Label(name)).ToList());
        if (failures.Count > 0)
        {
            logger.AcrossNodesAbandoned(name, string.Join("; ", failures));
            return ControlResponse.Failure($"checkpoint of group {name} across nodes not recorded: {string.Join("; ", failures)}; every member runs on (the parts taken stay in their nodes' stores, in no checkpoint across nodes)");
        }
        var parts = outcome.Remote.Select((r, i) => new CatalogPart
        {
            Node = r.Node, Local = others[i].Local == name ? "" : others[i].Local, Checkpoint = r.Done!.Checkpoints.FirstOrDefault() ?? "", Processes = r.Done.Processes,
            Bytes = r.Done.Bytes, FrozenMs = r.Done.Ms, FrozenAtUnixMs = r.Done.FrozenAtUnixMs, Copies = r.Done.Copies,
        }).ToList();
        if (held is not null)
        {
            var mine = NodeParts.PartOf(self, outcome.Local);
            mine.Copies = copies;
            parts.Add(mine);
        }
        double barrierMs = outcome.RoundMs[^1];
        var now = DateTimeOffset.UtcNow;
        var entry = new CatalogEntry
        {
            Id = GroupCatalog.NewId(now, self), Group = name, Leader = self, CreatedUnixMs = now.ToUnixTimeMilliseconds(),
            BarrierMs = Math.Round(barrierMs, 1), FreezeSpreadMs = Math.Round(parts.Max(p => p.FrozenAtUnixMs) - parts.Min(p => p.FrozenAtUnixMs), 1),
            Parts = [.. parts.OrderBy(p => p.Node, StringComparer.Ordinal).ThenBy(p => p.Local, StringComparer.Ordinal)],
            NodeLoss = held?.Config.NodeLoss ?? nodeLoss, Stopped = request.Stop,
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
                    $"  node {p.Node}{(p.Local.Length > 0 ? $" (as group {p.Local})" : "")}: checkpoint {p.Checkpoint}, {p.Processes.Count} processes, {p.Bytes / 1048576.0:0.0} MiB, frozen {p.FrozenMs:0} ms, {(p.Copies.Count > 0 ? $"copied to {string.Join(", ", p.Copies)}" : "no copy")}")),
                string.Create(CultureInfo.InvariantCulture,
                    $"checkpointed {(request.Stop ? "and stopped " : "")}group {name} across {Nodes(entry)} as {entry.Id}: frozen within {entry.FreezeSpreadMs:0.0} ms of each other, every part read out {barrierMs:0.0} ms after the word to freeze")],
            Report = JsonSerializer.Serialize(entry, CatalogJson.Default.CatalogEntry),
        };
    }

    /// <summary>"N nodes", and how many parts if some node has several.</summary>
    private static string Nodes(CatalogEntry entry) =>
        entry.Parts.Select(p => p.Node).Distinct().Count() is var nodes && nodes == entry.Parts.Count ? $"{nodes} nodes" : $"{nodes} nodes ({entry.Parts.Count} parts)";

    /// <summary>A part of this node's that has nothing to do at its barriers (every part is another's): each passed as the leader decides.</summary>
    private static ControlResponse PassBarriers(IReadOnlyList<Func<string?>> barriers)
    {
        foreach (var barrier in barriers)
        {
            if (barrier() is { } why)
                return ControlResponse.Failure(why);
        }
        return new ControlResponse { Ok = true };
    }

    /// <summary>
    /// Where each part of <paramref name="entry"/> is restored: on its node if that is live (this node
    /// or one of <paramref name="live"/>), else on a live node that holds a copy of it, as a group of
    /// that node's (<see cref="AdoptedName"/>); null, and why, if a part has neither.
    /// </summary>
    public List<PartPlace>? Place(CatalogEntry entry, List<NodeRecord> live, out string? problem)
    {
        problem = null;
        var nodes = live.Append(Self).ToDictionary(n => n.Name);
        var places = new List<PartPlace>();
        foreach (var part in entry.Parts)
        {
            string local = part.LocalOr(entry.Group);
            if (nodes.TryGetValue(part.Node, out var host))
            {
                places.Add(new PartPlace(part, host, local, ""));
                continue;
            }
            if (part.Copies.FirstOrDefault(nodes.ContainsKey) is not { } holder)
            {
                problem = $"node {part.Node}, which the cluster's store does not list as live, holds a part of checkpoint {entry.Id} of group {entry.Group} of which no live node has a copy{(part.Copies.Count > 0 ? $" (copies were on {string.Join(", ", part.Copies)})" : "")}";
                return null;
            }
            string adopted = AdoptedName(entry.Group, part);
            if (!AmberHome.IsValidGroupName(adopted))
            {
                problem = $"node {part.Node}'s part of group {entry.Group} cannot run on node {holder} as group '{adopted}': not a group name ({AmberHome.GroupNameRule})";
                return null;
            }
            places.Add(new PartPlace(part, nodes[holder], adopted, part.CopiedAs));
        }
        return places;
    }

    /// <summary>
    /// The name a lost node's part runs under on the node that holds its copy: the name it had there
    /// if it was not the group's (it came there from another lost node), else GROUP.NODE; so two
    /// parts of one group never share a name on a node.
    /// </summary>
    public static string AdoptedName(string group, CatalogPart part) => part.Local.Length > 0 ? part.Local : PartName(group, part.Node);

    /// <summary>The name of a part of group <paramref name="group"/> on a node that came from node <paramref name="node"/>: GROUP.NODE.</summary>
    public static string PartName(string group, string node) => $"{group}.{node}";

    /// <summary>
    /// The group back on every node of <paramref name="entry"/> (its catalog's checkpoint), released
    /// together; <paramref name="live"/> are the live nodes other than this one. A part whose node is
    /// not live is restored on a node that holds its copy (<see cref="Place"/>), and the catalog then
    /// says where the parts are (a new entry of the same checkpoint).
    /// </summary>
    /// <param name="held">This node's group of the group's name, whose Busy the caller holds; null: none.</param>
    /// <param name="entry">The checkpoint across nodes.</param>
    /// <param name="live">The other live nodes.</param>
    /// <param name="progress">Where this node's own part says how far it is.</param>
    /// <param name="replace">Members that run are ended first, every part put back at the checkpoint (a lost node's); else a part that runs is refused.</param>
    /// <param name="only">Only the parts it picks are restored (a lost node's, or a failed one, of a group whose parts are independent); the others run on. Null: every part.</param>
    public ControlResponse Restore(GroupRuntime? held, CatalogEntry entry, List<NodeRecord> live, Action<ProgressSample>? progress, bool replace = false,
        Func<PartPlace, bool>? only = null)
    {
        string name = entry.Group;
        string self = identity.Name;
        if (Place(entry, live, out string? unplaced) is not { } all)
            return ControlResponse.Failure(unplaced!);
        var places = only is null ? all : all.Where(only).ToList();
        if (places.Count == 0)
            return ControlResponse.Failure($"checkpoint {entry.Id} of group {name} has no such part");
        if (Lead(name) is { } notLeader)
            return ControlResponse.Failure(notLeader);
        // This node's own part runs here, under the Busy the caller holds; every other over a link (this node's others too).
        var mine = held is null ? null : places.FirstOrDefault(p => p.Host.Name == self && p.Local == held.Config.Name && p.Origin.Length == 0);
        StoredCheckpoint? checkpoint = null;
        if (mine is not null)
        {
            if (!replace && held!.LiveProcesses() is { Count: > 0 } running)
                return ControlResponse.Failure($"group {name} is running here ({running.Count} processes); stop it first");
            if ((checkpoint = held!.Store.Find(mine.Part.Checkpoint)) is null)
                return ControlResponse.Failure($"group {name} has no checkpoint {mine.Part.Checkpoint} here (its part of {entry.Id})");
        }
        var remote = places.Where(p => p != mine).ToList();
        var outcome = BarrierAcrossNodes.Run(self, barriers =>
            {
                if (mine is null)
                    return PassBarriers(barriers);
                if (replace && NodeParts.EndAtBarrier(held!, barriers[0]) is { } notEnded)
                    return ControlResponse.Failure(notEnded);
                return services.Restore(held!, checkpoint!, barriers[^1], progress: progress);
            },
            [.. remote.Select(p => (p.Host, new PeerMessage
            {
                Op = Ops.RestorePart, Name = p.Local, Checkpoints = [p.Part.Checkpoint], Across = name, Replace = replace,
                Origin = p.Origin, OriginGroup = p.Origin.Length > 0 ? p.Part.CopiedLocalOr(name) : "",
            }))], rounds: replace ? 2 : 1, Ops.Running, identity, peerTimeout, Lost);
        if (outcome.Abandoned is { } abandoned)
        {
            logger.AcrossNodesAbandoned(name, abandoned);
            return ControlResponse.Failure($"restore of group {name} across nodes from {entry.Id} abandoned: {abandoned}; nothing of it runs");
        }
        var failures = Failures(outcome, remote.Select(p => p.On.Label(name)).ToList());
        if (failures.Count > 0)
            return ControlResponse.Failure($"restore of group {name} across nodes from {entry.Id}: released, but {string.Join("; ", failures)}");
        var roots = outcome.Remote.Select((r, i) => (Place: remote[i], Roots: r.Done!.Roots))
            .Concat(mine is null ? [] : [(Place: mine, Roots: NodeParts.RootsOf(outcome.Local))])
            .OrderBy(r => r.Place.Host.Name, StringComparer.Ordinal).ThenBy(r => r.Place.Local, StringComparer.Ordinal).ToList();
        var warnings = outcome.Remote.SelectMany(r => r.Done!.Warnings).Select(w => $"warning: {w}").ToList();
        string placed = "";
        // Parts placed anew, or a group stopped at the entry running again: the catalog says where it runs.
        if (places.Any(p => p.Origin.Length > 0) || entry.Stopped)
        {
            var moved = Replaced(entry, all, live);
            try
            {
                if (GroupCatalog.Record(store, moved, self))
                    placed = moved.Id;
                else
                    warnings.Add($"warning: the catalog does not say where the parts now run: this node no longer leads group {name}");
            }
            catch (EtcdException e)
            {
                warnings.Add($"warning: the catalog does not say where the parts now run: the cluster's store is out of reach: {e.Message}");
            }
        }
        logger.AcrossNodesRestored(name, entry.Id, roots.Count, outcome.RoundMs[^1]);
        int hosts = roots.Select(r => r.Place.Host.Name).Distinct().Count();
        return new ControlResponse
        {
            Ok = true,
            Stdout = [.. roots.Select(r => $"{r.Place.Host.Name} {string.Join(' ', r.Roots)}")],
            Stderr = [.. Warnings(outcome.Local), .. warnings,
                .. places.Where(p => p.Origin.Length > 0).Select(p => $"node {p.Part.Node}'s part (lost with it) restored on node {p.Host.Name} from its copy there, as group {p.Local}"),
                only is not null
                    ? string.Create(CultureInfo.InvariantCulture, $"restored the lost parts of group {name} on {hosts} nodes from {entry.Id} (its other parts ran on): made in {outcome.RoundMs[^1]:0.0} ms, then released together")
                    : string.Create(CultureInfo.InvariantCulture, $"restored group {name} across {hosts} nodes from {entry.Id}: every part made in {outcome.RoundMs[^1]:0.0} ms, then released together")],
            Report = ReportJson.Write(w =>
            {
                w.WriteStartObject();
                w.WriteString("group", name);
                w.WriteString("checkpoint", entry.Id);
                if (placed.Length > 0)
                    w.WriteString("placed", placed);
                w.WriteNumber("barrierMs", Math.Round(outcome.RoundMs[^1], 1));
                w.WriteStartArray("nodes");
                foreach (var (place, pids) in roots)
                {
                    w.WriteStartObject();
                    w.WriteString("node", place.Host.Name);
                    w.WriteString("group", place.Local);
                    if (place.Origin.Length > 0)
                        w.WriteString("from", place.Part.Node);
                    w.WriteNumbers("roots", pids);
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }),
        };
    }

    /// <summary>
    /// The same checkpoint, its parts where they run now: a lost node's on the node that restored it,
    /// under its name there (its only copy is the one it was restored from); the copies on nodes that are
    /// not live dropped.
    /// </summary>
    private CatalogEntry Replaced(CatalogEntry entry, List<PartPlace> places, List<NodeRecord> live)
    {
        var alive = live.Select(n => n.Name).Append(identity.Name).ToHashSet(StringComparer.Ordinal);
        var now = DateTimeOffset.UtcNow;
        return new CatalogEntry
        {
            Id = GroupCatalog.NewId(now, identity.Name), Group = entry.Group, Leader = identity.Name, CreatedUnixMs = now.ToUnixTimeMilliseconds(),
            BarrierMs = entry.BarrierMs, FreezeSpreadMs = entry.FreezeSpreadMs, Replaces = entry.Id, NodeLoss = entry.NodeLoss,
            Parts = [.. places.Select(p => new CatalogPart
            {
                Node = p.Host.Name, Local = p.Local == entry.Group ? "" : p.Local, Checkpoint = p.Part.Checkpoint, Processes = p.Part.Processes, Bytes = p.Part.Bytes,
                FrozenMs = p.Part.FrozenMs, FrozenAtUnixMs = p.Part.FrozenAtUnixMs,
                Copies = p.Origin.Length > 0 ? [] : [.. p.Part.Copies.Where(alive.Contains)], CopiesOf = p.Origin.Length > 0 ? "" : p.Part.CopiesOf, CopiesOfLocal = p.Origin.Length > 0 ? "" : p.Part.CopiesOfLocal,
            }).OrderBy(p => p.Node, StringComparer.Ordinal).ThenBy(p => p.Local, StringComparer.Ordinal)],
        };
    }

    private static List<string> Failures(BarrierAcrossNodes.Outcome outcome, List<string> labels) =>
        [.. outcome.Local.Ok ? [] : new[] { $"this node: {outcome.Local.Error}" },
            .. outcome.Remote.Select((r, i) => (r, i)).Where(x => x.r.Done is null).Select(x => $"{labels[x.i]}: {x.r.Failure}")];

    private static IEnumerable<string> Warnings(ControlResponse response) => response.Stderr.Where(l => l.StartsWith("warning: ", StringComparison.Ordinal));
}

/// <summary>A part of a group across nodes that runs on <see cref="Node"/>, as its group <see cref="Local"/> there.</summary>
internal sealed record PartOnNode(NodeRecord Node, string Local)
{
    /// <summary>How a message names it: "node N", or "node N (group L)" for a part not under the group's name.</summary>
    public string Label(string group) => Local == group ? $"node {Node.Name}" : $"node {Node.Name} (group {Local})";
}

/// <summary>Where a part of a checkpoint across nodes is restored: on <see cref="Host"/>, as its group <see cref="Local"/>; from the copy kept as node <see cref="Origin"/>'s part (its lost node's, or the one it was migrated from; "": the host's own).</summary>
internal sealed record PartPlace(CatalogPart Part, NodeRecord Host, string Local, string Origin)
{
    /// <summary>The part as it runs once restored.</summary>
    public PartOnNode On => new(Host, Local);
}
