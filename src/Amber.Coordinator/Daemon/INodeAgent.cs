using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;

namespace Amber.Coordinator.Daemon;

/// <summary>
/// What makes a coordinator a node agent (amber agent): a listener for the other nodes of its
/// cluster, and the operations that move groups between nodes. The coordinator knows only this
/// interface; the transport above it implements it.
/// </summary>
public interface INodeAgent : IDisposable
{
    /// <summary>This node's name in the cluster.</summary>
    string Name { get; }

    /// <summary>amber run --node: the request sent to that node's agent, which runs it there as <paramref name="who"/>'s; its answer.</summary>
    ControlResponse RunOn(RunRequest request, Requester who);

    /// <summary>
    /// amber run of a group across nodes (one the cluster's store has settings or a catalog of, or one
    /// run here by --node, <see cref="RunRequest.Node"/>): the group's settings there with those the
    /// request gives, written there for every node's part to take; <paramref name="own"/> (this node's
    /// part's, the request's taken) if the store has none yet. Null for a group of this node alone (or
    /// no store); null and <paramref name="problem"/> if the request gives settings of a group across
    /// nodes that cannot be written (the store out of reach).
    /// </summary>
    GroupPolicy? Policy(RunRequest request, GroupPolicy own, out string? problem);

    /// <summary>Starts taking the other nodes' requests, once the coordinator's groups are loaded.</summary>
    void Start(NodeServices services);

    /// <summary>amber migrate: the group (whose Busy the caller holds) moved to another node.</summary>
    ControlResponse Migrate(GroupRuntime group, MigrateRequest request, Requester who, Action<ProgressSample>? progress);

    /// <summary>
    /// amber checkpoint --group of a group (whose Busy the caller holds) that runs on other nodes of
    /// the cluster too: one checkpoint of its members on every node at one barrier; null if it runs on
    /// this node alone (or the node knows no cluster's store), for the node's own checkpoint.
    /// <paramref name="scheduled"/>: the group's schedule asks for it; on a node that does not lead the
    /// group, nothing is done (the leader's schedule checkpoints it across nodes).
    /// </summary>
    ControlResponse? CheckpointAcrossNodes(GroupRuntime group, CheckpointRequest request, Requester who, Action<ProgressSample>? progress, bool scheduled = false);

    /// <summary>
    /// A member of the group (a node's part of a group across nodes, as the store last said) failed,
    /// with restart on failure: its group's leader is asked, on a thread of its own, to restore the
    /// whole group from its latest checkpoint across nodes (only this part, for a group whose parts are
    /// independent). False if the group is no such part (it restarts alone).
    /// </summary>
    bool RestartAcrossNodes(GroupRuntime group, string failures);

    /// <summary>
    /// amber restore --group of a group (whose Busy the caller holds) whose checkpoint to restore is
    /// one across nodes (the latest of its catalog, or the one named): every node's part made, then all
    /// released together; null if it is not (a checkpoint of this node's), for the node's own restore.
    /// </summary>
    ControlResponse? RestoreAcrossNodes(GroupRuntime group, RestoreRequest request, Requester who, Action<ProgressSample>? progress);

    /// <summary>
    /// amber stop --remove of a part of a group across nodes, removed here: the group forgotten in the
    /// cluster's store if no node runs a part of it any more (its name free for a new group). A line that
    /// says what became of it there; null for a group of this node's alone.
    /// </summary>
    string? Removed(GroupConfig config);
}
