namespace Amber.Checkpoint.Restore;

/// <summary>What a restore brought back.</summary>
/// <param name="Pid">The root of the (first) tree.</param>
/// <param name="Roots">The root of every tree restored (several for a group).</param>
/// <param name="Processes">Every process restored.</param>
/// <param name="Total">The whole restore, from the call to the processes released (or, not detached, to the root's end).</param>
/// <param name="Warnings">What came back other than as it was saved (a changed file, say), one line each.</param>
/// <param name="ExitCode">When not detached: the restored process's exit code (128+signal if killed).</param>
public sealed record RestoreResult(int Pid, IReadOnlyList<int> Roots, IReadOnlyList<int> Processes, TimeSpan Total, IReadOnlyList<string> Warnings, int? ExitCode)
{
    /// <summary>What rolling the storage back did; null when the checkpoint has no storage.</summary>
    public Storage.RollbackStats? Storage { get; init; }

    /// <summary>A lazy restore's pager, still placing pages: the processes need this process until it completes.</summary>
    public Resources.Memory.LazyPager? Lazy { get; init; }
}
