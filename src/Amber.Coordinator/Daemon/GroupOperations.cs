using Amber.Coordinator.Control;
using Amber.Coordinator.Daemon.Handlers;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Monitoring;
using Amber.Coordinator.Store;

namespace Amber.Coordinator.Daemon;

/// <summary>The monitor's operations, done by the same handlers as requests (and the node agent, for a group across nodes).</summary>
internal sealed class GroupOperations(OperationHandlers handlers, CoordinatorMetrics metrics, INodeAgent? agent) : IGroupOperations
{
    /// <summary>A scheduled checkpoint: of a group across nodes, one across them, taken on the schedule of the node that leads it.</summary>
    public ControlResponse Checkpoint(GroupRuntime group) =>
        agent?.CheckpointAcrossNodes(group, new CheckpointRequest(group.Config.Name, Stop: false, Full: false), group.Owner, null, scheduled: true)
        ?? handlers.Checkpoint.Checkpoint(group, stop: false, full: false);

    public bool RestartAcrossNodes(GroupRuntime group, string failures) => agent?.RestartAcrossNodes(group, failures) ?? false;

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
