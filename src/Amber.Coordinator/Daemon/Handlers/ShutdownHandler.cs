using Amber.Coordinator.Control;
using Amber.Coordinator.Security;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>amber daemon --stop: the coordinator ends (root only); its groups keep running.</summary>
internal sealed class ShutdownHandler(CancellationTokenSource stop)
{
    public ControlResponse Handle(Requester who)
    {
        if (!who.IsRoot)
            return ControlResponse.Failure("only root may stop the coordinator");
        // A moment later: the answer is sent from the request's thread, which the stop would otherwise
        // often end first (the CLI then saw the connection closed without an answer).
        stop.CancelAfter(TimeSpan.FromMilliseconds(200));
        return new ControlResponse { Ok = true, Stderr = ["coordinator stopping; groups keep running"] };
    }
}
