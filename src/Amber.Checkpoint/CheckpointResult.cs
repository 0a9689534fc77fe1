namespace Amber.Checkpoint;

/// <summary>What a checkpoint saved, and what it cost the processes.</summary>
/// <param name="Pid">The root of the (first) tree.</param>
/// <param name="Processes">Every process saved (zombies included).</param>
/// <param name="PagesWritten">Memory pages written into this checkpoint.</param>
/// <param name="ImageBytes">The size of the checkpoint on disk.</param>
/// <param name="Barrier">From the first stop requested to the last thread stopped.</param>
/// <param name="FrozenFor">From the moment the processes were stopped to the moment they were resumed or ended.</param>
/// <param name="Total">The whole checkpoint, from the call to the commit.</param>
/// <param name="Warnings">What was saved other than as it was (one line each: a TCP connection without the network lock, say).</param>
public sealed record CheckpointResult(
    int Pid, IReadOnlyList<int> Processes, long PagesWritten, long ImageBytes, TimeSpan Barrier, TimeSpan FrozenFor, TimeSpan Total,
    IReadOnlyList<string> Warnings)
{
    /// <summary>Pages of an incremental checkpoint left where an earlier checkpoint stored them.</summary>
    public long PagesKept { get; init; }

    /// <summary>The processes were ended once saved (not left running, and nothing kept them running: <see cref="CheckpointOptions.BeforeEnd"/>).</summary>
    public bool Ended { get; init; }

    /// <summary>From the freeze to the commit, just before <see cref="CheckpointOptions.BeforeEnd"/> was asked (a migration counts its downtime from there).</summary>
    public TimeSpan FrozenBeforeEnd { get; init; }

    /// <summary>When the freeze began (the wall clock's, Unix ms): nodes' parts of one checkpoint compare them.</summary>
    public double FrozenAtUnixMs { get; init; }

    /// <summary>The checkpoint an incremental one was taken after; null for a full one.</summary>
    public string? Parent { get; init; }

    /// <summary>What the storage checkpoint captured; null without one.</summary>
    public Storage.StorageStats? Storage { get; init; }

    /// <summary>Pages dirty tracking knew unwritten, kept without being read.</summary>
    public long PagesSkipped { get; init; }

    /// <summary>Pages written since the earlier checkpoint whose copy taken before the freeze was used (not read under it).</summary>
    public long PagesCopiedBeforeTheFreeze { get; init; }

    /// <summary>
    /// With <see cref="CheckpointOptions.Track"/>: a write tracker per process, to keep (holding the
    /// userfaultfd keeps the tracking alive) and hand to the next checkpoint.
    /// </summary>
    public IReadOnlyList<TrackedProcess> Trackers { get; init; } = [];
}

/// <summary>A process whose writes are tracked until the next checkpoint: its tracker and the ranges it tracks.</summary>
public sealed record TrackedProcess(int Pid, Kernel.Memory.DirtyTracker Tracker, IReadOnlyList<(ulong Start, ulong End)> Ranges);
