namespace Amber.Coordinator.Control;

/// <summary>
/// amber run: the group made if new (with these settings) or given those that may change, then
/// Command started in it, in WorkingDirectory with Environment (the caller's). A setting left at
/// its default (0, "", null) is not said.
/// </summary>
public sealed record RunRequest(string Group) : GroupRequest(Group)
{
    public const string Op = "run";

    public IReadOnlyList<string> Command { get; init; } = [];

    public string WorkingDirectory { get; init; } = "";

    public IReadOnlyList<string> Environment { get; init; } = [];

    public string Store { get; init; } = "";

    public double EverySeconds { get; init; }

    public IReadOnlyList<string> Storage { get; init; } = [];

    public bool? RestartOnFailure { get; init; }

    public double DeadlineSeconds { get; init; }

    public int MergeAfter { get; init; }

    public long MergeAboveBytes { get; init; }

    public string Compress { get; init; } = "";

    /// <summary>Retention: keep this many latest checkpoints (0: not said).</summary>
    public int KeepLast { get; init; }

    /// <summary>Retention: keep the checkpoints of this many last seconds (0: not said).</summary>
    public double KeepForSeconds { get; init; }

    /// <summary>The key file the group's checkpoints are encrypted with (a full path); only for a new group.</summary>
    public string Encrypt { get; init; } = "";

    public override ControlRequest ToWire() => new()
    {
        Op = Op, Group = Group, Command = [.. Command], WorkingDirectory = WorkingDirectory, Environment = [.. Environment],
        Store = Store, EverySeconds = EverySeconds, Storage = [.. Storage], RestartOnFailure = RestartOnFailure,
        DeadlineSeconds = DeadlineSeconds, MergeAfter = MergeAfter, MergeAboveBytes = MergeAboveBytes, Compress = Compress,
        KeepLast = KeepLast, KeepForSeconds = KeepForSeconds,
        Encrypt = Encrypt.Length > 0 ? Encrypt : null,
    };

    internal static RunRequest From(ControlRequest wire) => new(wire.Group)
    {
        Command = wire.Command, WorkingDirectory = wire.WorkingDirectory, Environment = wire.Environment,
        Store = wire.Store, EverySeconds = wire.EverySeconds, Storage = wire.Storage, RestartOnFailure = wire.RestartOnFailure,
        DeadlineSeconds = wire.DeadlineSeconds, MergeAfter = wire.MergeAfter, MergeAboveBytes = wire.MergeAboveBytes, Compress = wire.Compress,
        KeepLast = wire.KeepLast, KeepForSeconds = wire.KeepForSeconds,
        Encrypt = wire.Encrypt ?? "",
    };
}
