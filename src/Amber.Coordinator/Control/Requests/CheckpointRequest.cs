namespace Amber.Coordinator.Control;

/// <summary>amber checkpoint --group: one checkpoint at one barrier; incremental after the latest unless Full; the processes end once saved if Stop.</summary>
/// <param name="Group">The group.</param>
/// <param name="Stop">End the processes once the checkpoint is committed (amber checkpoint --stop).</param>
/// <param name="Full">A full checkpoint, not an incremental one after the latest (--full).</param>
public sealed record CheckpointRequest(string Group, bool Stop, bool Full) : GroupRequest(Group)
{
    /// <summary>The operation's name on the control socket (<see cref="ControlRequest.Op"/>).</summary>
    public const string Op = "checkpoint";

    /// <inheritdoc/>
    public override ControlRequest ToWire() => new() { Op = Op, Group = Group, Stop = Stop, Full = Full };
}
