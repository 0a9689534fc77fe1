namespace Amber.Coordinator.Control;

/// <summary>amber stop --group --remove: the group ended and forgotten; its checkpoints stay.</summary>
public sealed record RemoveRequest(string Group) : GroupRequest(Group)
{
    public const string Op = "remove";

    public override ControlRequest ToWire() => new() { Op = Op, Group = Group };
}
