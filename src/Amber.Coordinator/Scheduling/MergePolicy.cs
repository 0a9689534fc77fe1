using Amber.Coordinator.Store;

namespace Amber.Coordinator.Scheduling;

/// <summary>
/// When a group's chain is folded into a full checkpoint: once its latest checkpoint refers to
/// <paramref name="After"/> earlier ones, or once its incremental checkpoints hold more than
/// <paramref name="AboveBytes"/> together (0: no such limit) — many changed pages make a chain costly
/// to keep and slow to restore long before it is long.
/// </summary>
public sealed record MergePolicy(int After, long AboveBytes)
{
    /// <summary>Whether the chain that <paramref name="taken"/> (just committed to <paramref name="store"/>) ends is due.</summary>
    public bool IsDue(StoredCheckpoint taken, GroupStore store)
    {
        if (taken.Sources.Count == 0)
            return false;
        if (taken.Sources.Count >= After)
            return true;
        if (AboveBytes <= 0)
            return false;
        var stored = store.List().ToDictionary(c => c.Id);
        long incremental = taken.Bytes + taken.Sources.Select(stored.GetValueOrDefault).Where(c => c is { Parent.Length: > 0 }).Sum(c => c!.Bytes);
        return incremental > AboveBytes;
    }
}
