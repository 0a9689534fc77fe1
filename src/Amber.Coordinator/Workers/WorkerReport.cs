namespace Amber.Coordinator.Workers;

/// <summary>What a worker (amber internal checkpoint-group / restore-group) reports on its standard output.</summary>
public sealed class WorkerReport
{
    public bool Ok { get; set; }

    public string Error { get; set; } = "";

    /// <summary>checkpoint --stop: the processes were ended (not kept running by a hand-over that said stop).</summary>
    public bool Ended { get; set; }

    public List<int> Processes { get; set; } = [];

    public List<int> Roots { get; set; } = [];

    public double BarrierMs { get; set; }

    public double FrozenMs { get; set; }

    /// <summary>When the freeze began (Unix ms, the wall clock's).</summary>
    public double FrozenAtUnixMs { get; set; }

    /// <summary>checkpoint --stop: frozen from the freeze to the commit, before its end was decided (a hand-over).</summary>
    public double FrozenBeforeEndMs { get; set; }

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

    /// <summary>retain: the kept checkpoints folded into full ones before what they referred to was removed.</summary>
    public List<string> Merged { get; set; } = [];

    public List<string> Warnings { get; set; } = [];
}
