using System.Text.Json.Serialization;
using Amber.Coordinator.Daemon;

namespace Amber.Coordinator.Control;

/// <summary>A request to the coordinator, one JSON line on its control socket.</summary>
public sealed class ControlRequest
{
    /// <summary>run, attach, detach, checkpoint, restore, images, merge, verify, stop, remove, shutdown.</summary>
    public string Op { get; set; } = "";

    public string Group { get; set; } = "";

    public List<string> Command { get; set; } = [];

    public string WorkingDirectory { get; set; } = "";

    public List<string> Environment { get; set; } = [];

    public string Store { get; set; } = "";

    public double EverySeconds { get; set; }

    public List<string> Storage { get; set; } = [];

    /// <summary>run: restore the group when a member fails; null: not said (a new group: off; an existing one: as it is).</summary>
    public bool? RestartOnFailure { get; set; }

    /// <summary>run: how long registered programs get to prepare for a checkpoint; 0: the default (5 s).</summary>
    public double DeadlineSeconds { get; set; }

    public int Pid { get; set; }

    /// <summary>checkpoint: end the processes once saved instead of letting them run on.</summary>
    public bool Stop { get; set; }

    /// <summary>checkpoint: a full checkpoint, not an incremental one after the latest.</summary>
    public bool Full { get; set; }

    /// <summary>restore: the checkpoint to restore (default: the latest); merge: the checkpoint to fold (default: the latest).</summary>
    public string From { get; set; } = "";

    /// <summary>run: fold a group's chain into a full checkpoint once it is this long (0: the default, 8).</summary>
    public int MergeAfter { get; set; }

    /// <summary>run: fold it also once its incremental checkpoints hold more than this many bytes (0: no limit).</summary>
    public long MergeAboveBytes { get; set; }

    /// <summary>run: compression of the group's checkpoints (none, zstd, lz4; empty: not said, none for a new group).</summary>
    public string Compress { get; set; } = "";
}

/// <summary>The coordinator's answer: success or one line saying why not, and what to print.</summary>
public sealed class ControlResponse
{
    public bool Ok { get; set; }

    public string Error { get; set; } = "";

    /// <summary>Lines for standard output (machine-readable: a PID, a table).</summary>
    public List<string> Stdout { get; set; } = [];

    /// <summary>Lines for standard error (reports, warnings).</summary>
    public List<string> Stderr { get; set; } = [];

    public static ControlResponse Failure(string error) => new() { Ok = false, Error = error };
}

/// <summary>What a worker (amber internal checkpoint-group / restore-group) reports on its standard output.</summary>
public sealed class WorkerReport
{
    public bool Ok { get; set; }

    public string Error { get; set; } = "";

    public List<int> Processes { get; set; } = [];

    public List<int> Roots { get; set; } = [];

    public double BarrierMs { get; set; }

    public double FrozenMs { get; set; }

    public double TotalMs { get; set; }

    public long Pages { get; set; }

    public long Bytes { get; set; }

    /// <summary>Pages an incremental checkpoint left where an earlier one stored them.</summary>
    public long PagesKept { get; set; }

    /// <summary>Of those, pages dirty tracking knew unwritten: not even read.</summary>
    public long PagesSkipped { get; set; }

    /// <summary>Pages written since the earlier checkpoint that were copied before the freeze, not under it.</summary>
    public long PagesCopiedBeforeTheFreeze { get; set; }

    public string Parent { get; set; } = "";

    /// <summary>checkpoint with storage: what it captured, in one line; restore: what the rollback did.</summary>
    public string Storage { get; set; } = "";

    /// <summary>merge: the earlier checkpoints removed afterwards.</summary>
    public List<string> Removed { get; set; } = [];

    public List<string> Warnings { get; set; } = [];
}

[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(ControlRequest))]
[JsonSerializable(typeof(ControlResponse))]
[JsonSerializable(typeof(WorkerReport))]
[JsonSerializable(typeof(GroupConfig))]
public sealed partial class CoordinatorJson : JsonSerializerContext;
