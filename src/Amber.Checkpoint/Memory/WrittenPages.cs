namespace Amber.Checkpoint.Memory;

/// <summary>
/// What dirty tracking says of a process since its last checkpoint: the ranges it tracked, and in
/// them the pages written since (PAGEMAP_SCAN, PAGE_IS_WRITTEN). A page of a tracked range that is
/// not among them is known unchanged; outside the tracked ranges nothing is known.
/// </summary>
public sealed class WrittenPages(IReadOnlyList<(ulong Start, ulong End)> tracked, IReadOnlyList<(ulong Start, ulong End)> written)
{
    private readonly (ulong Start, ulong End)[] _tracked = [.. tracked.OrderBy(r => r.Start)];
    private readonly (ulong Start, ulong End)[] _written = [.. written.OrderBy(r => r.Start)];

    public long WrittenPageCount => _written.Sum(r => (long)((r.End - r.Start) / 4096));

    /// <summary>For a range wholly tracked: whether a page of it is unchanged; null when [start, end) is not all tracked.</summary>
    public Func<ulong, bool>? CleanIn(ulong start, ulong end)
    {
        if (!_tracked.Any(t => t.Start <= start && end <= t.End))
            return null;
        return page => !Contains(_written, page);
    }

    private static bool Contains((ulong Start, ulong End)[] ranges, ulong address)
    {
        int lo = 0, hi = ranges.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (address < ranges[mid].Start)
                hi = mid - 1;
            else if (address >= ranges[mid].End)
                lo = mid + 1;
            else
                return true;
        }
        return false;
    }
}
