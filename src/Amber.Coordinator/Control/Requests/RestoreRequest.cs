namespace Amber.Coordinator.Control;

/// <summary>amber restore --group: the group back from checkpoint From (empty: the latest).</summary>
/// <param name="Group">The group.</param>
/// <param name="From">The checkpoint to restore; empty: the latest.</param>
public sealed record RestoreRequest(string Group, string From) : GroupRequest(Group)
{
    /// <summary>The operation's name on the control socket (<see cref="ControlRequest.Op"/>).</summary>
    public const string Op = "restore";

    /// <inheritdoc/>
    public override ControlRequest ToWire() => new() { Op = Op, Group = Group, From = From };
}
