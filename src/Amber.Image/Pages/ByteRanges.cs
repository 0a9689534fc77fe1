namespace Amber.Image;

/// <summary>
/// A set of byte ranges of one file, kept merged and in order: what of a page file has arrived, or
/// has been sent. Not thread-safe.
/// </summary>
public sealed class ByteRanges
{
    private readonly List<(ulong Start, ulong End)> _ranges = [];

    /// <summary>Bytes in the set.</summary>
    public ulong Total { get; private set; }

    /// <summary>Adds [start, end).</summary>
    public void Add(ulong start, ulong end)
    {
        if (end <= start)
            return;
        // The first range that ends at or after start: it and the ones after it that begin by end merge.
        int i = FirstEndingAtOrAfter(start);
        int j = i;
        while (j < _ranges.Count && _ranges[j].Start <= end)
        {
            start = Math.Min(start, _ranges[j].Start);
            end = Math.Max(end, _ranges[j].End);
            Total -= _ranges[j].End - _ranges[j].Start;
            j++;
        }
        _ranges.RemoveRange(i, j - i);
        _ranges.Insert(i, (start, end));
        Total += end - start;
    }

    /// <summary>Whether every byte of [start, end) is in the set.</summary>
    public bool Covers(ulong start, ulong end)
    {
        if (end <= start)
            return true;
        int i = FirstEndingAtOrAfter(start + 1);
        return i < _ranges.Count && _ranges[i].Start <= start && _ranges[i].End >= end;
    }

    /// <summary>The first stretch of [start, end) not in the set, if any.</summary>
    public bool FirstGap(ulong start, ulong end, out ulong gapStart, out ulong gapEnd)
    {
        int i = FirstEndingAtOrAfter(start + 1);
        ulong at = start;
        for (; i < _ranges.Count && at < end; i++)
        {
            if (_ranges[i].Start > at)
                break;
            at = Math.Max(at, _ranges[i].End);
        }
        if (at >= end)
        {
            gapStart = gapEnd = 0;
            return false;
        }
        gapStart = at;
        gapEnd = i < _ranges.Count ? Math.Min(end, _ranges[i].Start) : end;
        return true;
    }

    private int FirstEndingAtOrAfter(ulong at)
    {
        int lo = 0, hi = _ranges.Count;
        while (lo < hi)
        {
            int mid = (lo + hi) / 2;
            if (_ranges[mid].End < at)
                lo = mid + 1;
            else
                hi = mid;
        }
        return lo;
    }
}
