using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Store;

namespace Amber.Coordinator.Monitoring;

/// <summary>
/// What the monitor has done to a group: the same operations requests do (the daemon's handlers),
/// started by the monitor instead of a user. The caller holds the group's Busy.
/// </summary>
public interface IGroupOperations
{
    /// <summary>A scheduled checkpoint: incremental after the latest one, the group running on.</summary>
    ControlResponse Checkpoint(GroupRuntime group);

    /// <summary>The chain of the group's latest checkpoint folded into a full one.</summary>
    ControlResponse Merge(GroupRuntime group);

    /// <summary>The group's retention policy applied to its store.</summary>
    ControlResponse Retain(GroupRuntime group);

    /// <summary>
    /// A restart of a node's part of a group across nodes: its whole group restored by the group's
    /// leader from its latest checkpoint across nodes (asked now; done in the background, once the caller
    /// has let the group go). False if the group is no such part: it restarts alone.
    /// </summary>
    bool RestartAcrossNodes(GroupRuntime group, string failures);

    /// <summary>The group back from <paramref name="checkpoint"/>, for its owner, once its store is confirmed.</summary>
    ControlResponse Restore(GroupRuntime group, StoredCheckpoint checkpoint);
}
