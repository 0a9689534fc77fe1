namespace Amber.Coordinator.Control;

/// <summary>amber stop --group: every process of the group ended; the group stays.</summary>
public sealed record StopRequest(string Group) : GroupRequest(Group)
{
    /// <summary>The operation's name on the control socket (<see cref="ControlRequest.Op"/>).</summary>
    public const string Op = "stop";

    /// <inheritdoc/>
    public override ControlRequest ToWire() => new() { Op = Op, Group = Group };
}
