namespace Amber.Coordinator.Control;

/// <summary>amber images --group: the group's checkpoints, one line each.</summary>
public sealed record ImagesRequest(string Group) : GroupRequest(Group)
{
    public const string Op = "images";

    public override ControlRequest ToWire() => new() { Op = Op, Group = Group };
}
