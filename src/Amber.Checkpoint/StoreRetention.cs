using System.Diagnostics;
using Amber.Image;

namespace Amber.Checkpoint;

/// <summary>
/// Which checkpoints of a store are kept: the <paramref name="KeepLast"/> latest ones (0: no such
/// rule), and those taken in the last <paramref name="KeepFor"/> (zero: no such rule). The latest
/// checkpoint is always kept; with neither rule, nothing is removed.
/// </summary>
public sealed record RetentionPolicy(int KeepLast, TimeSpan KeepFor)
{
    public bool IsSet => KeepLast > 0 || KeepFor > TimeSpan.Zero;

    /// <summary>For a user: "keep the last 5, and those of the last 1 h".</summary>
    public override string ToString() => !IsSet ? "keep everything" : "keep " + string.Join(", and ", new[]
    {
        KeepLast > 0 ? $"the last {KeepLast}" : null,
        KeepFor > TimeSpan.Zero ? $"those of the last {KeepFor.TotalSeconds} s" : null,
    }.OfType<string>());
}

/// <summary>What applying a retention policy did.</summary>
/// <param name="Kept">The checkpoints the policy keeps, oldest first.</param>
/// <param name="Merged">Kept incremental checkpoints folded into full ones, because they referred to a checkpoint that goes.</param>
/// <param name="Removed">The checkpoints removed.</param>
public sealed record RetentionResult(IReadOnlyList<string> Kept, IReadOnlyList<string> Merged, IReadOnlyList<string> Removed, TimeSpan Total);

/// <summary>
/// Applies a retention policy to a store. A checkpoint the policy does not keep may still hold pages
/// that a kept incremental checkpoint refers to: every such kept checkpoint is first folded into a
/// full one (<see cref="CheckpointMerger"/>, which links page files rather than copying them where it
/// can), so that removing what the policy drops never takes a page a kept checkpoint needs. Each
/// step is as safe as a merge or a removal alone: interrupted anywhere, every checkpoint the store
/// lists still restores. A checkpoint that cannot be read is neither kept nor removed: amber verify
/// says what is wrong with it.
/// </summary>
public static class StoreRetention
{
    private sealed record Entry(string Name, string Path, DateTimeOffset Created, IReadOnlyList<string> Sources);

    /// <summary>Applies <paramref name="policy"/> to the checkpoints of <paramref name="store"/> as of <paramref name="now"/>.</summary>
    /// <param name="key">The key of the store's encrypted checkpoints, for the merges.</param>
    public static RetentionResult Apply(string store, RetentionPolicy policy, DateTimeOffset now, ImageKey? key = null, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        var entries = Scan(store);
        if (!policy.IsSet || entries.Count == 0)
            return new RetentionResult([.. entries.Select(e => e.Name)], [], [], clock.Elapsed);
        var kept = new HashSet<string>(StringComparer.Ordinal) { entries[^1].Name };
        if (policy.KeepLast > 0)
            kept.UnionWith(entries.TakeLast(policy.KeepLast).Select(e => e.Name));
        if (policy.KeepFor > TimeSpan.Zero)
            kept.UnionWith(entries.Where(e => e.Created >= now - policy.KeepFor).Select(e => e.Name));
        var dropped = entries.Where(e => !kept.Contains(e.Name)).Select(e => e.Name).ToHashSet(StringComparer.Ordinal);
        var merged = new List<string>();
        // Newest first: a checkpoint's page files are rewritten by its merge, so whatever refers to them
        // must be folded before it — and all that does also refers to what it refers to, so is folded here.
        foreach (var entry in entries.Where(e => kept.Contains(e.Name) && e.Sources.Any(dropped.Contains)).Reverse())
        {
            cancel.ThrowIfCancellationRequested();
            CheckpointMerger.Merge(entry.Path, key: key, removeChain: false, cancel: cancel);
            merged.Add(entry.Name);
        }
        merged.Reverse();
        var removed = CheckpointMerger.RemoveUnneeded(store, [.. dropped]);
        return new RetentionResult([.. entries.Where(e => kept.Contains(e.Name)).Select(e => e.Name)], merged, removed, clock.Elapsed);
    }

    /// <summary>The checkpoints of the store that can be read, in the order they were taken.</summary>
    private static List<Entry> Scan(string store)
    {
        var entries = new List<Entry>();
        if (!Directory.Exists(store))
            return entries;
        foreach (var dir in Directory.GetDirectories(store))
        {
            if (!CheckpointStore.IsCommitted(dir))
                continue;
            try
            {
                var manifest = CheckpointReader.Open(dir, verifyPageFiles: false).Manifest;
                entries.Add(new Entry(Path.GetFileName(dir), dir, DateTimeOffset.FromUnixTimeMilliseconds(manifest.CreatedUnixMs), [.. manifest.Sources]));
            }
            catch (Exception e) when (e is ImageFormatException or ImageStoreException or IOException)
            {
                // Not readable: never counted as kept, never removed here.
            }
        }
        return [.. entries.OrderBy(e => e.Created).ThenBy(e => e.Name, StringComparer.Ordinal)];
    }
}
