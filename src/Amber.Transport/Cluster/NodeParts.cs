using System.Text.Json;
using Amber.Coordinator.Control;
using Amber.Coordinator.Daemon;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Store;
using Amber.Transport.Peers;

namespace Amber.Transport.Cluster;

/// <summary>
/// A node's part of an operation of a group across nodes, asked by the group's leader
/// (<see cref="BarrierAcrossNodes"/>): "part" (a checkpoint of the group's members here) or
/// "restore" (them back from this node's part of a checkpoint across nodes). At its barrier the node
/// says "held" and waits for the leader's "go" (the part goes on) or "abort" (it is undone: the
/// members run on as they were, or those restored are ended); a leader that goes silent is an abort.
/// Then it says how the part ended: "done" or "running", or an error.
/// </summary>
internal static class NodeParts
{
    /// <summary>A checkpoint's part: the group's members here checkpointed at the leader's barrier, then copied to the node the leader named.</summary>
    /// <param name="services">This node's coordinator.</param>
    /// <param name="link">The link to the leader.</param>
    /// <param name="request">The leader's "checkpoint-part".</param>
    /// <param name="identity">This node, to send the part's copy to another (<see cref="PeerMessage.CopyTo"/>).</param>
    /// <param name="timeout">How long a peer may be silent.</param>
    public static void Checkpoint(NodeServices services, PeerLink link, PeerMessage request, NodeIdentity identity, TimeSpan timeout)
    {
        if (services.Find(request.Name) is not { } group)
        {
            link.Send(PeerMessage.Failure($"node {link.Peer} asked for a part of group {request.Name}, which does not run here"));
            return;
        }
        bool full = request.Mode == "full";
        var response = AtBarriers(link, barrier => services.WhileBusy(group, () => request.Stop
            ? CheckpointAndEnd(services, group, full, barrier, barrier)
            : services.Checkpoint(group, full, barrier: new PartBarrier(barrier, barrier))));
        if (!response.Ok)
        {
            link.Send(PeerMessage.Failure(response.Error));
            return;
        }
        var part = PartOf("", response);
        var warnings = new List<string>();
        if (request.CopyTo.Length > 0)
            part.Copies = Copy(group, part.Checkpoint, new NodeRecord { Name = request.CopyTo, Address = request.CopyAddress }, identity, timeout, warnings);
        link.Send(new PeerMessage
        {
            Op = Ops.Done, Checkpoints = [part.Checkpoint], Processes = part.Processes, Bytes = part.Bytes, Ms = part.FrozenMs, FrozenAtUnixMs = part.FrozenAtUnixMs,
            Copies = part.Copies, Warnings = warnings,
        });
    }

    /// <summary>
    /// A part of a checkpoint across nodes that stops the group: <paramref name="beforeFreeze"/> passed
    /// before the worker starts, then the members frozen and read out, and at <paramref name="atBarrier"/>
    /// (every node's part read out) ended on the leader's "go", or run on as they were on anything else.
    /// Its members never run after the cut: the cut is consistent whenever each node froze.
    /// </summary>
    public static ControlResponse CheckpointAndEnd(NodeServices services, GroupRuntime group, bool full, Func<string?> beforeFreeze, Func<string?> atBarrier)
    {
        if (beforeFreeze() is { } notReady)
            return ControlResponse.Failure(notReady);
        var response = services.CheckpointAndHandOver(group, full, _ => atBarrier());
        return !response.Ok || response.Ended ? response
            : ControlResponse.Failure($"group {group.Config.Name} was not stopped, and runs on: {string.Join("; ", response.Stderr)}");
    }

    /// <summary>The part's copy sent to <paramref name="buddy"/>: the nodes that hold one (none if it failed, said in <paramref name="warnings"/>).</summary>
    public static List<string> Copy(GroupRuntime group, string id, NodeRecord buddy, NodeIdentity identity, TimeSpan timeout, List<string> warnings)
    {
        if (Replicas.Send(group.Store, group.Config, id, buddy, identity, timeout) is { } problem)
        {
            warnings.Add($"checkpoint {id} of group {group.Config.Name} was not copied to node {buddy.Name}: {problem}");
            return [];
        }
        return [buddy.Name];
    }

    /// <summary>
    /// A restore's part: the group's members here back from this node's part of a checkpoint across
    /// nodes, at the leader's barrier. With <see cref="PeerMessage.Origin"/>, the part is a lost node's,
    /// restored from this node's copy of it as a group of this node's (<see cref="Replicas.Adopt"/>),
    /// which is forgotten again if the restore does not go through; with <see cref="PeerMessage.Replace"/>,
    /// members of it that run here are ended first (the whole group goes back to the checkpoint).
    /// </summary>
    public static void Restore(NodeServices services, PeerLink link, PeerMessage request)
    {
        bool adopting = request.Origin.Length > 0;
        var group = services.Find(request.Name);
        string? problem = null;
        if (group is null && adopting)
            group = Replicas.Adopt(services, request.Across, request.OriginGroup, request.Origin, request.Name, out problem);
        else if (group is null)
            problem = $"node {link.Peer} asked to restore a part of group {request.Name}, which this node does not have";
        else if (adopting && group.Config.PartOf != request.Across)
            problem = $"node {link.Peer} asked to restore node {request.Origin}'s part of group {request.Across} here as group {request.Name}, and this node has a group {request.Name} of its own";
        if (group is null || problem is not null)
        {
            link.Send(PeerMessage.Failure(problem!));
            return;
        }
        bool made = adopting && group.Config.Arriving;
        StoredCheckpoint? from = null;
        var response = AtBarriers(link, atBarrier => services.WhileBusy(group, () =>
        {
            string id = request.Checkpoints.FirstOrDefault() ?? "";
            from = group.Store.Find(id) ?? (adopting ? Replicas.Find(services.Home, request.OriginGroup, request.Origin, id) : null);
            if (request.Checkpoints.Count != 1 || from is null)
                return ControlResponse.Failure($"group {group.Config.Name} has no checkpoint {string.Join(", ", request.Checkpoints)} here");
            if (request.Replace)
            {
                if (EndAtBarrier(group, atBarrier) is { } notEnded)
                    return ControlResponse.Failure(notEnded);
            }
            else if (group.LiveProcesses() is { Count: > 0 } live)
            {
                return ControlResponse.Failure($"group {group.Config.Name} is running there ({live.Count} processes); stop it first");
            }
            return services.Restore(group, from, atBarrier);
        }));
        var warnings = new List<string>();
        if (adopting && response.Ok)
        {
            // Its checkpoints are the group's now, here.
            if (from!.Path.StartsWith(Replicas.Directory(services.Home, request.OriginGroup, request.Origin), StringComparison.Ordinal)
                && Replicas.Settle(services.Home, group, request.OriginGroup, request.Origin, from.Id) is { } unsettled)
                warnings.Add(unsettled);
            NodeServices.Arrived(group);
        }
        else if (made)
        {
            warnings.AddRange(services.Forget(group));
        }
        link.Send(response.Ok
            ? new PeerMessage { Op = Ops.Running, Roots = RootsOf(response), Ms = response.Figure("totalMs"), Warnings = warnings }
            : PeerMessage.Failure(response.Error));
    }

    /// <summary>
    /// A part put back at a checkpoint over members that run (a restore with replace, its first
    /// barrier): they are frozen, all of them on every node, before any is ended, so that none sees
    /// another's connections reset by the end of its peer; at the leader's "go" they are ended, and
    /// at its "abort" they run on as they were. Why not, or null once none is left.
    /// </summary>
    public static string? EndAtBarrier(GroupRuntime group, Func<string?> barrier)
    {
        bool running = group.LiveProcesses().Count > 0;
        try
        {
            if (running)
                group.Cgroup.Freeze(TimeSpan.FromSeconds(5));
        }
        catch (IOException e)
        {
            return $"group {group.Config.Name}'s members could not be frozen to be put back: {e.Message}";
        }
        if (barrier() is { } why)
        {
            if (running)
                group.Cgroup.Thaw();
            return why;
        }
        if (!running)
            return null;
        group.Config.Roots.Clear();
        try
        {
            group.KillAll(unplug: true);
        }
        finally
        {
            // Empty now: what the restore puts in it must not be born frozen.
            group.Cgroup.Thaw();
        }
        return null;
    }

    /// <summary>
    /// Runs a part whose barriers (each a call of what it is given) ask the leader: "held" said (the
    /// heartbeat stopped for it), its word awaited; beats say the node is at work otherwise, so that a
    /// long part is not taken for a dead node.
    /// </summary>
    private static ControlResponse AtBarriers(PeerLink link, Func<Func<string?>, ControlResponse> part)
    {
        var beats = link.KeepAlive();
        try
        {
            return part(() =>
            {
                beats.Dispose();
                try
                {
                    link.Send(PeerMessage.Of(Ops.Held));
                    var word = Next(link);
                    return word.Op == Ops.Go ? null
                        : word.Op == Ops.Abort ? $"the leader, node {link.Peer}, abandoned it: {word.Error}"
                        : $"the leader, node {link.Peer}, said '{word.Op}'";
                }
                catch (IOException e)
                {
                    return $"the leader, node {link.Peer}, is lost: {e.Message}";
                }
                finally
                {
                    beats = link.KeepAlive();
                }
            });
        }
        finally
        {
            beats.Dispose();
        }
    }

    /// <summary>The next message that is not a "busy".</summary>
    public static PeerMessage Next(PeerLink link)
    {
        while (true)
        {
            var message = link.Receive();
            if (message.Op != Ops.Busy)
                return message;
        }
    }

    /// <summary>A checkpoint's part as a node's checkpoint's response (its report) describes it.</summary>
    public static CatalogPart PartOf(string node, ControlResponse response)
    {
        var part = new CatalogPart { Node = node, Checkpoint = response.Stdout.FirstOrDefault() ?? "" };
        if (response.Report.Length == 0)
            return part;
        using var report = JsonDocument.Parse(response.Report);
        var root = report.RootElement;
        if (root.TryGetProperty("processes", out var processes))
            part.Processes = [.. processes.EnumerateArray().Select(p => p.GetInt32())];
        if (root.TryGetProperty("bytes", out var bytes))
            part.Bytes = bytes.GetInt64();
        if (root.TryGetProperty("frozenMs", out var frozen))
            part.FrozenMs = frozen.GetDouble();
        if (root.TryGetProperty("frozenAtUnixMs", out var at))
            part.FrozenAtUnixMs = at.GetDouble();
        return part;
    }

    /// <summary>The roots a restore's response names.</summary>
    public static List<int> RootsOf(ControlResponse response) =>
        [.. response.Stdout.Select(l => int.TryParse(l, out int pid) ? pid : 0).Where(pid => pid > 0)];
}
