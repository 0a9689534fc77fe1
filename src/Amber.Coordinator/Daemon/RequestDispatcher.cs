using Amber.Coordinator.Control;
using Amber.Coordinator.Daemon.Handlers;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;

namespace Amber.Coordinator.Daemon;

/// <summary>
/// Takes a request from the control socket to its handler: checks that it names a group (one made
/// by a run request if new) that the requester may use — root, or the group's owner — and holds the
/// group's Busy while the handler works, refreshing its table afterwards.
/// </summary>
internal sealed class RequestDispatcher(GroupSet groups, OperationHandlers handlers)
{
    public ControlResponse Handle(ControlRequest wire, Requester who)
    {
        var request = Request.FromWire(wire);
        if (request is null)
            return ControlResponse.Failure($"unknown request '{wire.Op}'");
        if (request is ShutdownRequest)
            return handlers.Shutdown.Handle(who);
        var named = (GroupRequest)request;
        if (!AmberHome.IsValidGroupName(named.Group))
            return ControlResponse.Failure($"'{named.Group}' is not a group name ({AmberHome.GroupNameRule})");
        if (request is RunRequest settings && GroupSettings.Problem(settings) is { } invalid)
            return ControlResponse.Failure(invalid);
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
        group.Busy.Wait();
        try
        {
            return named switch
            {
                RunRequest r => handlers.Run.Handle(group, r, who),
                AttachRequest r => handlers.Attach.Handle(group, r, who),
                DetachRequest r => handlers.Detach.Handle(group, r, who),
                CheckpointRequest r => handlers.Checkpoint.Handle(group, r, who),
                RestoreRequest r => handlers.Restore.Handle(group, r, who),
                ImagesRequest r => handlers.Images.Handle(group, r, who),
                MergeRequest r => handlers.Merge.Handle(group, r, who),
                VerifyRequest r => handlers.Verify.Handle(group, r, who),
                StopRequest r => handlers.Stop.Handle(group, r, who),
                RemoveRequest r => handlers.Remove.Handle(group, r, who),
                _ => ControlResponse.Failure($"unknown request '{wire.Op}'"),
            };
        }
        finally
        {
            // A removed group is gone, its Busy with it.
            if (named is not RemoveRequest)
            {
                group.RefreshTable();
                group.Busy.Release();
            }
        }
    }
}
