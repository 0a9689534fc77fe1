namespace Amber.Checkpoint;

/// <param name="Pid">The root of the (first) tree.</param>
/// <param name="Processes">Every process saved (zombies included).</param>
/// <param name="Barrier">From the first stop requested to the last thread stopped.</param>
/// <param name="FrozenFor">From the moment the processes were stopped to the moment they were resumed or ended.</param>
public sealed record CheckpointResult(
    int Pid, IReadOnlyList<int> Processes, long PagesWritten, long ImageBytes, TimeSpan Barrier, TimeSpan FrozenFor, TimeSpan Total,
    IReadOnlyList<string> Warnings)
{
    /// <summary>Pages of an incremental checkpoint left where an earlier checkpoint stored them.</summary>
    public long PagesKept { get; init; }

    /// <summary>The checkpoint an incremental one was taken after; null for a full one.</summary>
    public string? Parent { get; init; }
}
