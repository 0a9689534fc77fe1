namespace Amber.Coordinator.Control;

/// <summary>amber stop --group --remove: the group ended and forgotten; its checkpoints stay.</summary>
public sealed record RemoveRequest(string Group) : GroupRequest(Group)
{
    /// <summary>The operation's name on the control socket (<see cref="ControlRequest.Op"/>).</summary>
    public const string Op = "remove";

    /// <inheritdoc/>
    public override ControlRequest ToWire() => new() { Op = Op, Group = Group };
}
