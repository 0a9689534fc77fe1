namespace Amber.Coordinator.Control;

/// <summary>amber verify --group: every checkpoint of the group's store checked.</summary>
public sealed record VerifyRequest(string Group) : GroupRequest(Group)
{
    /// <summary>The operation's name on the control socket (<see cref="ControlRequest.Op"/>).</summary>
    public const string Op = "verify";

    /// <inheritdoc/>
    public override ControlRequest ToWire() => new() { Op = Op, Group = Group };
}
