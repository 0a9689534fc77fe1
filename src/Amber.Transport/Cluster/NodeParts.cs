using System.Text.Json;
using Amber.Coordinator.Control;
using Amber.Coordinator.Daemon;
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
        var response = AtBarriers(link, barrier => services.WhileBusy(group, () => services.Checkpoint(group, full: request.Mode == "full", barrier: new PartBarrier(barrier, barrier))));
        if (!response.Ok)
        {
            link.Send(PeerMessage.Failure(response.Error));
            return;
        }
        var part = PartOf("", response);
        var warnings = new List<string>();
        if (request.CopyTo.Length > 0)
            part.Copies = Copy(group.Store, group.Config.Name, part.Checkpoint, new NodeRecord { Name = request.CopyTo, Address = request.CopyAddress }, identity, timeout, warnings);
        link.Send(new PeerMessage
        {
            Op = Ops.Done, Checkpoints = [part.Checkpoint], Processes = part.Processes, Bytes = part.Bytes, Ms = part.FrozenMs, FrozenAtUnixMs = part.FrozenAtUnixMs,
            Copies = part.Copies, Warnings = warnings,
        });
    }

    /// <summary>The part's copy sent to <paramref name="buddy"/>: the nodes that hold one (none if it failed, said in <paramref name="warnings"/>).</summary>
    public static List<string> Copy(Coordinator.Store.GroupStore store, string group, string id, NodeRecord buddy, NodeIdentity identity, TimeSpan timeout, List<string> warnings)
    {
        if (Replicas.Send(store, group, id, buddy, identity, timeout) is { } problem)
        {
            warnings.Add($"checkpoint {id} of group {group} was not copied to node {buddy.Name}: {problem}");
            return [];
        }
        return [buddy.Name];
    }

    public static void Restore(NodeServices services, PeerLink link, PeerMessage request)
    {
        if (services.Find(request.Name) is not { } group)
        {
            link.Send(PeerMessage.Failure($"node {link.Peer} asked to restore a part of group {request.Name}, which this node does not have"));
            return;
        }
        var response = AtBarriers(link, atBarrier => services.WhileBusy(group, () =>
        {
            if (group.LiveProcesses() is { Count: > 0 } live)
                return ControlResponse.Failure($"group {group.Config.Name} is running there ({live.Count} processes); stop it first");
            if (request.Checkpoints is not [var id] || group.Store.Find(id) is not { } checkpoint)
                return ControlResponse.Failure($"group {group.Config.Name} has no checkpoint {string.Join(", ", request.Checkpoints)} here");
            return services.Restore(group, checkpoint, atBarrier);
        }));
        link.Send(response.Ok ? new PeerMessage { Op = Ops.Running, Roots = RootsOf(response), Ms = response.Figure("totalMs") } : PeerMessage.Failure(response.Error));
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
