using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>amber stop: every process of the group ended, on purpose (not a failure: no restart).</summary>
internal sealed class StopHandler(ILogger logger) : IGroupHandler<StopRequest>
{
    public ControlResponse Handle(GroupRuntime group, StopRequest request, Requester who, Action<ProgressSample>? progress) => Stop(group);

    public ControlResponse Stop(GroupRuntime group)
    {
        group.Config.Roots.Clear();
        group.Config.Launched.Clear();
        group.Save();
        int count = group.LiveProcesses().Count;
        group.KillAll();
        group.DropTrackers();
        logger.Stopped(group.Config.Name, count);
        return new ControlResponse { Ok = true, Stderr = [$"stopped group {group.Config.Name} ({count} processes ended)"] };
    }
}
