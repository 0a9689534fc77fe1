using Amber.Coordinator.Control;
using Amber.Coordinator.Daemon.Handlers;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;

namespace Amber.Coordinator.Daemon;

/// <summary>
/// Takes a request from the control socket to its handler: checks that it names a group (one made
/// by a run request if new) that the requester may use — root, or the group's owner — and holds the
/// group's Busy while the handler works, refreshing its table afterwards. A requester that asked for
/// progress hears it, and first that it waits, if another operation on the group is under way.
/// </summary>
internal sealed class RequestDispatcher(GroupSet groups, OperationHandlers handlers, INodeAgent? agent, GroupStreams streams)
{
    public ControlResponse Handle(ControlRequest wire, Requester who, Action<ProgressSample>? progress = null)
    {
        var request = Request.FromWire(wire);
        if (request is null)
            return ControlResponse.Failure($"unknown request '{wire.Op}'");
        if (request is ShutdownRequest)
            return handlers.Shutdown.Handle(who);
        if (request is ReceiveRequest receive)
            return streams.Receive(receive.FromFd, receive.Restore, who, progress); // its group is named by the stream
        var named = (GroupRequest)request;
        if (!AmberHome.IsValidGroupName(named.Group))
            return ControlResponse.Failure($"'{named.Group}' is not a group name ({AmberHome.GroupNameRule})");
        if (request is RunRequest settings && GroupSettings.Problem(settings) is { } invalid)
            return ControlResponse.Failure(invalid);
        if (request is RunRequest { Node.Length: > 0 } elsewhere)
        {
            if (agent is null)
                return ControlResponse.Failure($"--node {elsewhere.Node}: the coordinator of {AmberHome.Current.RunDirectory} is not a node agent (amber agent ... --etcd URL)");
            if (elsewhere.Node != agent.Name)
                return agent.RunOn(elsewhere, who);
            // (Its node named, this one: a part of a group across nodes, whose settings the agent keeps.)
        }
        var group = groups.Find(named.Group);
        if (group is null && request is RunRequest runRequest)
        {
            group = handlers.Run.Create(runRequest, who, out var problem);
            if (problem is not null)
                return ControlResponse.Failure(problem);
        }
        if (group is null)
            return ControlResponse.Failure($"there is no group '{named.Group}'");
        if (!who.IsRoot && who.Uid != group.Config.Owner)
            return ControlResponse.Failure($"group {group.Config.Name} belongs to uid {group.Config.Owner}; only it and root may use it");
        if (!group.Busy.Wait(0))
        {
            progress?.Invoke(new ProgressSample { Phase = "waiting for the group's operation under way" });
            group.Busy.Wait();
        }
        try
        {
            return named switch
            {
                RunRequest r => handlers.Run.Handle(group, r, who, progress),
                AttachRequest r => handlers.Attach.Handle(group, r, who, progress),
                DetachRequest r => handlers.Detach.Handle(group, r, who, progress),
                CheckpointRequest r => agent?.CheckpointAcrossNodes(group, r, who, progress) ?? handlers.Checkpoint.Handle(group, r, who, progress),
                RestoreRequest r => agent?.RestoreAcrossNodes(group, r, who, progress) ?? handlers.Restore.Handle(group, r, who, progress),
                ImagesRequest r => handlers.Images.Handle(group, r, who, progress),
                MergeRequest r => handlers.Merge.Handle(group, r, who, progress),
                VerifyRequest r => handlers.Verify.Handle(group, r, who, progress),
                StopRequest r => handlers.Stop.Handle(group, r, who, progress),
                RemoveRequest r => Removed(handlers.Remove.Handle(group, r, who, progress), group.Config),
                MigrateRequest { ToFd: >= 0 } r => streams.ToFile(group, r.ToFd, who),
                MigrateRequest r => agent is null
                    ? ControlResponse.Failure($"the coordinator of {AmberHome.Current.RunDirectory} is not a node agent: start it with amber agent --listen ADDR:PORT --cluster DIR --node NAME to migrate groups")
                    : agent.Migrate(group, r, who, progress),
                _ => ControlResponse.Failure($"unknown request '{wire.Op}'"),
            };
        }
        finally
        {
            // A removed group is gone, its Busy with it (a migrated one too).
            if (named is not RemoveRequest && groups.Find(group.Config.Name) == group)
            {
                group.RefreshTable();
                group.Busy.Release();
            }
        }
    }

    /// <summary>A removed part of a group across nodes: what became of the group in the cluster's store said after the removal's own lines.</summary>
    private ControlResponse Removed(ControlResponse removed, GroupConfig config)
    {
        if (removed.Ok && agent?.Removed(config) is { } line)
            removed.Stderr.Add(line);
        return removed;
    }
}
