using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>
/// amber stop --remove: ends the group's processes and forgets the group: its settings, table,
/// socket and cgroup go; its store stays. The group is gone afterwards, its Busy with it.
/// </summary>
internal sealed class RemoveHandler(AmberHome home, GroupSet groups, StopHandler stop, ILogger logger) : IGroupHandler<RemoveRequest>
{
    public ControlResponse Handle(GroupRuntime group, RemoveRequest request, Requester who, Action<ProgressSample>? progress)
    {
        var stopped = stop.Stop(group);
        groups.Remove(group.Config.Name);
        File.Delete(home.GroupConfig(group.Config.Name));
        group.Dispose();
        File.Delete(home.ProcessTable(group.Config.Name));
        group.Cgroup.TryRemove();
        try
        {
            GroupNetwork.Unpublish(group.Config);
        }
        catch (Amber.Kernel.KernelCallException e)
        {
            return new ControlResponse { Ok = true, Stderr = [.. stopped.Stderr, $"warning: group {group.Config.Name}: its published ports stay: {e.Message}", $"removed group {group.Config.Name}; its checkpoints stay in {group.Config.Store}"] };
        }
        logger.Removed(group.Config.Name, group.Config.Store);
        return new ControlResponse { Ok = true, Stderr = [.. stopped.Stderr, $"removed group {group.Config.Name}; its checkpoints stay in {group.Config.Store}"] };
    }
}
