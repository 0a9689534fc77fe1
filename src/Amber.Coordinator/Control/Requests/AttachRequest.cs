namespace Amber.Coordinator.Control;

/// <summary>amber attach: a running process tree (PID and its descendants) joins the group.</summary>
/// <param name="Group">The group to join.</param>
/// <param name="Pid">The root of the tree; its descendants come with it.</param>
public sealed record AttachRequest(string Group, int Pid) : GroupRequest(Group)
{
    /// <summary>The operation's name on the control socket (<see cref="ControlRequest.Op"/>).</summary>
    public const string Op = "attach";

    /// <inheritdoc/>
    public override ControlRequest ToWire() => new() { Op = Op, Group = Group, Pid = Pid };
}
