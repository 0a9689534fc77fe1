using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>amber stop: every process of the group ended, on purpose (not a failure: no restart).</summary>
internal sealed class StopHandler : IGroupHandler<StopRequest>
{
    public ControlResponse Handle(GroupRuntime group, StopRequest request, Requester who) => Stop(group);

    public static ControlResponse Stop(GroupRuntime group)
    {
        group.Config.Roots.Clear();
        group.Config.Launched.Clear();
        group.Save();
        int count = group.LiveProcesses().Count;
        group.KillAll();
        group.DropTrackers();
        CoordinatorLog.Write($"group {group.Config.Name}: stopped ({count} processes ended)");
        return new ControlResponse { Ok = true, Stderr = [$"stopped group {group.Config.Name} ({count} processes ended)"] };
    }
}
