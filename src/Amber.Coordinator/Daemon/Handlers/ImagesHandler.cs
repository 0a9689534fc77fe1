using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>amber images --group: the group's checkpoints in the order they were taken.</summary>
internal sealed class ImagesHandler(StoreApproval approval) : IGroupHandler<ImagesRequest>
{
    public ControlResponse Handle(GroupRuntime group, ImagesRequest request, Requester who, Action<ProgressSample>? progress)
    {
        if (approval.Confirm(group) is { } changed)
            return ControlResponse.Failure(changed);
        var contents = group.Store.Scan();
        var lines = contents.Describe();
        return new ControlResponse
        {
            Ok = true, Stdout = lines, Stderr = lines.Count == 0 ? [$"group {group.Config.Name} has no checkpoint yet"] : [], Report = ReportJson.Store(contents),
        };
    }
}
