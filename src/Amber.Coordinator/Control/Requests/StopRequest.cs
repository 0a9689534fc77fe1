namespace Amber.Coordinator.Control;

/// <summary>amber stop --group: every process of the group ended; the group stays.</summary>
public sealed record StopRequest(string Group) : GroupRequest(Group)
{
    public const string Op = "stop";

    public override ControlRequest ToWire() => new() { Op = Op, Group = Group };
}
