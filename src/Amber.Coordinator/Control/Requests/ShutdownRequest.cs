namespace Amber.Coordinator.Control;

/// <summary>amber daemon --stop: the coordinator ends (root only); its groups run on.</summary>
public sealed record ShutdownRequest : Request
{
    /// <summary>The operation's name on the control socket (<see cref="ControlRequest.Op"/>).</summary>
    public const string Op = "shutdown";

    /// <inheritdoc/>
    public override ControlRequest ToWire() => new() { Op = Op };
}
