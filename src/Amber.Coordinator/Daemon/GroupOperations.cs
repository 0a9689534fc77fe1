using Amber.Coordinator.Control;
using Amber.Coordinator.Daemon.Handlers;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Monitoring;
using Amber.Coordinator.Store;

namespace Amber.Coordinator.Daemon;

/// <summary>The monitor's operations, done by the same handlers as requests.</summary>
internal sealed class GroupOperations(OperationHandlers handlers, CoordinatorMetrics metrics) : IGroupOperations
{
    public ControlResponse Checkpoint(GroupRuntime group) => handlers.Checkpoint.Checkpoint(group, stop: false, full: false);

    public ControlResponse Merge(GroupRuntime group) => handlers.Merge.Merge(group, "");

    public ControlResponse Retain(GroupRuntime group) => handlers.Merge.Retain(group);

    public ControlResponse Restore(GroupRuntime group, StoredCheckpoint checkpoint)
    {
        var response = handlers.Approval.Confirm(group) is { } changed ? ControlResponse.Failure(changed) : handlers.Restore.RestoreFrom(group, checkpoint.Path, checkpoint.Id, group.Owner);
        if (response.Ok)
            metrics.Restarted(group.Config.Name); // only a restart on failure restores through the monitor
        return response;
    }
}
