namespace Amber.Coordinator.Control;

/// <summary>amber attach: a running process tree (PID and its descendants) joins the group.</summary>
public sealed record AttachRequest(string Group, int Pid) : GroupRequest(Group)
{
    public const string Op = "attach";

    public override ControlRequest ToWire() => new() { Op = Op, Group = Group, Pid = Pid };
}
