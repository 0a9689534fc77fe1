using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;
using Amber.Coordinator.Store;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>amber verify --group: every checkpoint of the group's store checked (no merge or checkpoint runs meanwhile).</summary>
internal sealed class VerifyHandler(StoreApproval approval) : IGroupHandler<VerifyRequest>
{
    public ControlResponse Handle(GroupRuntime group, VerifyRequest request, Requester who)
    {
        if (approval.Confirm(group) is { } changed)
            return ControlResponse.Failure(changed);
        Amber.Image.ImageKey? key;
        try
        {
            key = GroupKey.Of(group.Config);
        }
        catch (Amber.Image.ImageStoreException e)
        {
            return ControlResponse.Failure($"group {group.Config.Name}: {e.Message}");
        }
        var found = StoreVerifier.Verify(group.Store, key);
        string report = ReportJson.Verification(found.Checkpoints, found.Damaged, found.Lines, found.Unfinished);
        if (found.Checkpoints == 0)
            return new ControlResponse { Ok = false, Stdout = found.Lines, Report = report, Error = $"group {group.Config.Name} has no checkpoint to verify (its store: {group.Config.Store})" };
        if (found.Damaged > 0)
            return new ControlResponse { Ok = false, Stdout = found.Lines, Report = report, Error = $"{found.Damaged} of {found.Checkpoints} checkpoint(s) of group {group.Config.Name} are damaged" };
        return new ControlResponse { Ok = true, Stdout = found.Lines, Stderr = [$"group {group.Config.Name}: {found.Summary}"], Report = report };
    }
}
