namespace Amber.Coordinator.Control;

/// <summary>amber checkpoint --group: one checkpoint at one barrier; incremental after the latest unless Full; the processes end once saved if Stop.</summary>
public sealed record CheckpointRequest(string Group, bool Stop, bool Full) : GroupRequest(Group)
{
    public const string Op = "checkpoint";

    public override ControlRequest ToWire() => new() { Op = Op, Group = Group, Stop = Stop, Full = Full };
}
