using Amber.Coordinator.Groups;
using Amber.Kernel.Processes;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>One handler per operation, made once by the coordinator (they keep no state of their own), and the store checks they share.</summary>
internal sealed record OperationHandlers(StoreApproval Approval, ShutdownHandler Shutdown, RunHandler Run, AttachHandler Attach, DetachHandler Detach,
    CheckpointHandler Checkpoint, RestoreHandler Restore, ImagesHandler Images, MergeHandler Merge, VerifyHandler Verify,
    StopHandler Stop, RemoveHandler Remove)
{
    public static OperationHandlers Create(AmberHome home, ChildReaper reaper, GroupSet groups, CancellationTokenSource stopping)
    {
        var approval = new StoreApproval(home, reaper);
        return new(approval, new ShutdownHandler(stopping), new RunHandler(home, reaper, approval, groups), new AttachHandler(), new DetachHandler(),
            new CheckpointHandler(home, reaper, approval), new RestoreHandler(home, reaper, approval), new ImagesHandler(approval),
            new MergeHandler(home, reaper, approval), new VerifyHandler(approval), new StopHandler(), new RemoveHandler(home, groups));
    }
}
