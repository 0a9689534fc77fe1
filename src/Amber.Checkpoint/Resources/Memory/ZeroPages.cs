using Amber.Image;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// Pages that read as zero need not be stored where zero is what a restore finds anyway (anonymous
/// memory, holes of shared memory and files): the stretches of a buffer worth storing.
/// </summary>
public static class ZeroPages
{
    /// <summary>(first page, page count) of each run of pages holding a non-zero byte, in order.</summary>
    public static List<(int First, int Count)> NonZeroStretches(ReadOnlySpan<byte> data)
    {
        var stretches = new List<(int, int)>();
        int count = data.Length / ImageFormat.PageSize;
        int start = -1;
        for (int i = 0; i <= count; i++)
        {
            bool keep = i < count && data.Slice(i * ImageFormat.PageSize, ImageFormat.PageSize).ContainsAnyExcept((byte)0);
            if (keep && start < 0)
            {
                start = i;
            }
            else if (!keep && start >= 0)
            {
                stretches.Add((start, i - start));
                start = -1;
            }
        }
        return stretches;
    }
}
