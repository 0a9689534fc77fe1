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
    /// <summary>Starts taking the other nodes' requests, once the coordinator's groups are loaded.</summary>
    void Start(NodeServices services);

    /// <summary>amber migrate: the group (whose Busy the caller holds) moved to another node.</summary>
    ControlResponse Migrate(GroupRuntime group, MigrateRequest request, Requester who, Action<ProgressSample>? progress);
}
