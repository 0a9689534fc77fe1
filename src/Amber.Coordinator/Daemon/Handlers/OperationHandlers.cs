using Amber.Coordinator.Groups;
using Amber.Coordinator.Monitoring;
using Amber.Kernel.Processes;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>One handler per operation, made once by the coordinator (they keep no state of their own), and the store checks they share.</summary>
internal sealed record OperationHandlers(StoreApproval Approval, ShutdownHandler Shutdown, RunHandler Run, AttachHandler Attach, DetachHandler Detach,
    CheckpointHandler Checkpoint, RestoreHandler Restore, ImagesHandler Images, MergeHandler Merge, VerifyHandler Verify,
    StopHandler Stop, RemoveHandler Remove)
{
    public static OperationHandlers Create(AmberHome home, ChildReaper reaper, GroupSet groups, CancellationTokenSource stopping, ILoggerFactory loggers,
        CoordinatorConfig defaults, CoordinatorMetrics metrics, INodeAgent? agent)
    {
        var approval = new StoreApproval(home, reaper, loggers.CreateLogger<StoreApproval>());
        var attach = new AttachHandler(loggers.CreateLogger<AttachHandler>());
        var stop = new StopHandler(loggers.CreateLogger<StopHandler>());
        return new(approval, new ShutdownHandler(stopping), new RunHandler(home, reaper, approval, groups, attach, loggers, defaults, agent), attach,
            new DetachHandler(loggers.CreateLogger<DetachHandler>()),
            new CheckpointHandler(home, reaper, approval, metrics, loggers.CreateLogger<CheckpointHandler>()),
            new RestoreHandler(home, reaper, approval, metrics, loggers.CreateLogger<RestoreHandler>()), new ImagesHandler(approval),
            new MergeHandler(home, reaper, approval, metrics, loggers.CreateLogger<MergeHandler>()), new VerifyHandler(approval), stop,
            new RemoveHandler(home, groups, stop, loggers.CreateLogger<RemoveHandler>()));
    }
}
