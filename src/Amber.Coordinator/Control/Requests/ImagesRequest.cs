namespace Amber.Coordinator.Control;

/// <summary>amber images --group: the group's checkpoints, one line each.</summary>
public sealed record ImagesRequest(string Group) : GroupRequest(Group)
{
    /// <summary>The operation's name on the control socket (<see cref="ControlRequest.Op"/>).</summary>
    public const string Op = "images";

    /// <inheritdoc/>
    public override ControlRequest ToWire() => new() { Op = Op, Group = Group };
}
