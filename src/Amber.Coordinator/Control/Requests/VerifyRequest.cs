namespace Amber.Coordinator.Control;

/// <summary>amber verify --group: every checkpoint of the group's store checked.</summary>
public sealed record VerifyRequest(string Group) : GroupRequest(Group)
{
    public const string Op = "verify";

    public override ControlRequest ToWire() => new() { Op = Op, Group = Group };
}
