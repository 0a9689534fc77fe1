namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// What dirty tracking says of a process since its last checkpoint: the ranges it tracked, and in
/// them the pages written since (PAGEMAP_SCAN, PAGE_IS_WRITTEN): those a scan found while the process
/// still ran, and those the scan under the freeze found after. A page of a tracked range that is not
/// among them is known unchanged; outside the tracked ranges nothing is known.
/// </summary>
public sealed class WrittenPages(
    IReadOnlyList<(ulong Start, ulong End)> tracked, IReadOnlyList<(ulong Start, ulong End)> writtenBefore, IReadOnlyList<(ulong Start, ulong End)> writtenSince)
{
    private readonly (ulong Start, ulong End)[] _tracked = [.. tracked.OrderBy(r => r.Start)];
    private readonly (ulong Start, ulong End)[] _written = Union(writtenBefore, writtenSince);
    private readonly (ulong Start, ulong End)[] _writtenSince = [.. Sorted(writtenSince)];

    /// <summary>
    /// The pages in either list, as sorted ranges that neither overlap nor touch: merged in one pass
    /// into one array (built under the freeze, where every new page of memory costs a fault).
    /// </summary>
    private static (ulong Start, ulong End)[] Union(IReadOnlyList<(ulong Start, ulong End)> a, IReadOnlyList<(ulong Start, ulong End)> b)
    {
        a = Sorted(a);
        b = Sorted(b);
        var union = new (ulong Start, ulong End)[Merge(a, b, null)];
        Merge(a, b, union);
        return union;
    }

    /// <returns>How many ranges the union has (written into <paramref name="into"/> when given).</returns>
    private static int Merge(IReadOnlyList<(ulong Start, ulong End)> a, IReadOnlyList<(ulong Start, ulong End)> b, (ulong Start, ulong End)[]? into)
    {
        int i = 0, j = 0, count = 0;
        (ulong Start, ulong End)? open = null;
        while (i < a.Count || j < b.Count)
        {
            var next = j == b.Count || (i < a.Count && a[i].Start <= b[j].Start) ? a[i++] : b[j++];
            if (open is { } current && next.Start <= current.End)
            {
                open = (current.Start, Math.Max(current.End, next.End));
                continue;
            }
            if (open is { } done && into is not null)
                into[count - 1] = done;
            open = next;
            count++;
        }
        if (open is { } last && into is not null)
            into[count - 1] = last;
        return count;
    }

    private static IReadOnlyList<(ulong Start, ulong End)> Sorted(IReadOnlyList<(ulong Start, ulong End)> ranges)
    {
        for (int i = 1; i < ranges.Count; i++)
        {
            if (ranges[i].Start < ranges[i - 1].Start)
                return [.. ranges.OrderBy(r => r.Start)];
        }
        return ranges;
    }

    /// <summary>A walk over the written pages of [start, end), which must be all tracked; null when it is not.</summary>
    /// <remarks>The cursor tells, for addresses that only grow, whether a page was written since, and up to where that holds.</remarks>
    public RangeCursor? WalkIn(ulong start, ulong end) =>
        _tracked.Any(t => t.Start <= start && end <= t.End) ? new RangeCursor(_written) : null;

    /// <summary>A walk over the pages the scan under the freeze found written (after the scan before it).</summary>
    public RangeCursor WalkWrittenSince() => new(_writtenSince);
}
