namespace Amber.Coordinator.Control;

/// <summary>amber detach: a process tree of the group leaves it (it runs on, no longer checkpointed).</summary>
public sealed record DetachRequest(string Group, int Pid) : GroupRequest(Group)
{
    public const string Op = "detach";

    public override ControlRequest ToWire() => new() { Op = Op, Group = Group, Pid = Pid };
}
