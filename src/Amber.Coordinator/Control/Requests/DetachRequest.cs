namespace Amber.Coordinator.Control;

/// <summary>amber detach: a process tree of the group leaves it (it runs on, no longer checkpointed).</summary>
/// <param name="Group">The group.</param>
/// <param name="Pid">The root of the tree to take out.</param>
public sealed record DetachRequest(string Group, int Pid) : GroupRequest(Group)
{
    /// <summary>The operation's name on the control socket (<see cref="ControlRequest.Op"/>).</summary>
    public const string Op = "detach";

    /// <inheritdoc/>
    public override ControlRequest ToWire() => new() { Op = Op, Group = Group, Pid = Pid };
}
