namespace Amber.Coordinator.Control;

/// <summary>amber merge --group: checkpoint From (empty: the latest) and its chain folded into one full checkpoint.</summary>
/// <param name="Group">The group.</param>
/// <param name="From">The checkpoint to fold with its chain; empty: the latest.</param>
public sealed record MergeRequest(string Group, string From) : GroupRequest(Group)
{
    /// <summary>The operation's name on the control socket (<see cref="ControlRequest.Op"/>).</summary>
    public const string Op = "merge";

    /// <inheritdoc/>
    public override ControlRequest ToWire() => new() { Op = Op, Group = Group, From = From };
}
