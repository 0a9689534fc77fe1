namespace Amber.Coordinator.Control;

/// <summary>amber migrate --group: the running group moved to the node agent at <paramref name="To"/>.</summary>
/// <param name="Group">The group.</param>
/// <param name="To">The destination agent's ADDR:PORT.</param>
/// <param name="Mode">precopy (rounds while it runs, then a short final one), or stop (one checkpoint, frozen throughout).</param>
/// <param name="MaxDowntimeMs">Pre-copy: rounds go on until the last one is estimated to take no longer than this.</param>
/// <param name="OnNoConvergence">Pre-copy whose rounds stop shrinking: "stop" (a final round however long) or "abort".</param>
/// <param name="ToFd">amber migrate --to-file: the requester's fd the group's stream goes to (then To is empty); -1: none.</param>
public sealed record MigrateRequest(string Group, string To, string Mode, double MaxDowntimeMs, string OnNoConvergence, int ToFd = -1) : GroupRequest(Group)
{
    /// <summary>The operation's name on the control socket (<see cref="ControlRequest.Op"/>).</summary>
    public const string Op = "migrate";

    public const string PreCopy = "precopy";
    public const string StopAndCopy = "stop";
    public const string PostCopy = "postcopy";
    public const double DefaultMaxDowntimeMs = 100;

    /// <summary>--on-no-convergence: a final round however long (the default).</summary>
    public const string FinalRoundAnyway = "stop";

    /// <summary>--on-no-convergence: the group stays where it is.</summary>
    public const string Abort = "abort";

    /// <inheritdoc/>
    public override ControlRequest ToWire() => new()
    {
        Op = Op, Group = Group, To = To, Mode = Mode, MaxDowntimeMs = MaxDowntimeMs, OnNoConvergence = OnNoConvergence, Fd = ToFd >= 0 ? ToFd : null,
    };
}
