using Amber.Checkpoint;

namespace Amber.Coordinator.Store;

/// <summary>
/// What amber verify found in a store: a line per directory ("ID: ok", "ID: DAMAGED: why", "NAME:
/// not a checkpoint (why)"), how many checkpoints there were and how many of them are damaged.
/// </summary>
public sealed record StoreVerification(List<string> Lines, int Checkpoints, int Damaged, IReadOnlyList<string> Unfinished)
{
    /// <summary>The line that sums it up: what was verified, and what was not a checkpoint.</summary>
    public string Summary =>
        $"{Checkpoints} checkpoint(s) verified" + (Unfinished.Count > 0 ? $"; not checkpoints: {string.Join(", ", Unfinished)}" : "");
}

/// <summary>Verifies every checkpoint of a store, in the store's order (what amber images lists), damaged ones included.</summary>
public static class StoreVerifier
{
    /// <param name="store">The store.</param>
    /// <param name="key">The key of its encrypted checkpoints (a group's, or amber verify --key).</param>
    public static StoreVerification Verify(GroupStore store, Amber.Image.ImageKey? key = null)
    {
        var contents = store.Scan();
        var (lines, damaged) = CheckpointVerifier.VerifyAll(contents.Entries.Select(e => e.Path), key);
        lines.AddRange(contents.Unfinished.Select(name => $"{name}: not a checkpoint ({StoreContents.WhyUnfinished(name)})"));
        return new StoreVerification(lines, contents.Entries.Count, damaged, contents.Unfinished);
    }
}
