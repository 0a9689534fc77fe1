namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// A walk over sorted ranges that do not overlap, for addresses that only grow: which
/// range an address is in, if any, and up to where that answer holds. Each range is passed once.
/// </summary>
public sealed class RangeCursor((ulong Start, ulong End)[] ranges)
{
    /// <summary>The range the last <see cref="Inside"/> found (or the next one).</summary>
    public int At { get; private set; }

    /// <summary>Whether <paramref name="address"/> is in a range; either way, up to where that holds.</summary>
    public bool Inside(ulong address, out ulong until)
    {
        while (At < ranges.Length && ranges[At].End <= address)
            At++;
        if (At < ranges.Length && ranges[At].Start <= address)
        {
            until = ranges[At].End;
            return true;
        }
        until = At < ranges.Length ? ranges[At].Start : ulong.MaxValue;
        return false;
    }
}
