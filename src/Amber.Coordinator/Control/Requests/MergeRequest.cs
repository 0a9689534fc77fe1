namespace Amber.Coordinator.Control;

/// <summary>amber merge --group: checkpoint From (empty: the latest) and its chain folded into one full checkpoint.</summary>
public sealed record MergeRequest(string Group, string From) : GroupRequest(Group)
{
    public const string Op = "merge";

    public override ControlRequest ToWire() => new() { Op = Op, Group = Group, From = From };
}
