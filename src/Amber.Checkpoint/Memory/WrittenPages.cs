namespace Amber.Checkpoint.Memory;

/// <summary>
/// What dirty tracking says of a process since its last checkpoint: the ranges it tracked, and in
/// them the pages written since (PAGEMAP_SCAN, PAGE_IS_WRITTEN; several scans together). A page of a tracked range that is
/// not among them is known unchanged; outside the tracked ranges nothing is known.
/// </summary>
public sealed class WrittenPages(IReadOnlyList<(ulong Start, ulong End)> tracked, IReadOnlyList<(ulong Start, ulong End)> written)
{
    private readonly (ulong Start, ulong End)[] _tracked = [.. tracked.OrderBy(r => r.Start)];
    private readonly (ulong Start, ulong End)[] _written = Union(written);

    /// <summary>The pages in any of the ranges, as sorted ranges that neither overlap nor touch.</summary>
    private static (ulong Start, ulong End)[] Union(IEnumerable<(ulong Start, ulong End)> ranges)
    {
        var union = new List<(ulong Start, ulong End)>();
        foreach (var (start, end) in ranges.OrderBy(r => r.Start))
        {
            if (union.Count > 0 && start <= union[^1].End)
                union[^1] = (union[^1].Start, Math.Max(union[^1].End, end));
            else
                union.Add((start, end));
        }
        return [.. union];
    }

    /// <summary>A walk over the written pages of [start, end), which must be all tracked; null when it is not.</summary>
    /// <remarks>The cursor tells, for addresses that only grow, whether a page was written since, and up to where that holds.</remarks>
    public RangeCursor? WalkIn(ulong start, ulong end) =>
        _tracked.Any(t => t.Start <= start && end <= t.End) ? new RangeCursor(_written) : null;
}
