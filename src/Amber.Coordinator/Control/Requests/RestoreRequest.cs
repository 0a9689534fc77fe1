namespace Amber.Coordinator.Control;

/// <summary>amber restore --group: the group back from checkpoint From (empty: the latest).</summary>
public sealed record RestoreRequest(string Group, string From) : GroupRequest(Group)
{
    public const string Op = "restore";

    public override ControlRequest ToWire() => new() { Op = Op, Group = Group, From = From };
}
