namespace Amber.Coordinator.Control;

/// <summary>amber daemon --stop: the coordinator ends (root only); its groups run on.</summary>
public sealed record ShutdownRequest : Request
{
    public const string Op = "shutdown";

    public override ControlRequest ToWire() => new() { Op = Op };
}
