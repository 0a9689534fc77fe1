using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;
using Amber.Kernel;
using Amber.Kernel.Processes;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>amber detach: a tree leaves the group; its processes go back to the root cgroup and are no longer checkpointed.</summary>
internal sealed class DetachHandler(ILogger logger) : IGroupHandler<DetachRequest>
{
    public ControlResponse Handle(GroupRuntime group, DetachRequest request, Requester who, Action<ProgressSample>? progress)
    {
        int pid = request.Pid;
        if (!group.Config.Roots.Contains(pid))
            return ControlResponse.Failure($"process {pid} is not the root of a tree of group {group.Config.Name}");
        var root = Cgroup.Open("") ?? throw new IOException("no cgroup v2 root");
        foreach (int p in ProcessTree.Of(pid))
        {
            try { root.Add(p); }
            catch (TargetGoneException) { }
        }
        group.Config.Roots.Remove(pid);
        group.Config.Launched.Remove(pid);
        group.Save();
        logger.Detached(group.Config.Name, pid);
        return new ControlResponse { Ok = true, Stderr = [$"detached process {pid} from group {group.Config.Name}"] };
    }
}
