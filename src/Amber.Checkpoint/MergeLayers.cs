using Amber.Image;
using Amber.Image.Schema;

namespace Amber.Checkpoint;

/// <summary>
/// Which page files of a chain a merge takes in whole, by a hard link, instead of copying their
/// pages. A page file (a process's, or the storage's) whose data is still mostly in use by the
/// merged checkpoint — the base checkpoint's, in a chain of small incremental ones — becomes a
/// layer of the merged checkpoint's page file of that name, its runs pointing into it unchanged.
/// The merge then reads and writes only the pages newer than the base, where a copy would read and
/// write them all (on this disk, both together run at half the speed of either alone). What a
/// linked file holds that is no longer in use stays on disk until a later merge finds the file less
/// than half used and copies the rest out: at most half of a linked file is dead weight.
/// </summary>
internal static class MergeLayers
{
    /// <summary>Fewer bytes in use than this: copied, one file fewer for a restore to open.</summary>
    internal const long LinkAtLeastBytes = 1 << 20;

    /// <summary>
    /// The most layers a page file of a merged checkpoint has: only a file holding a sixteenth of the
    /// pages in use or more is linked. The few pages of a small incremental checkpoint are copied
    /// instead, into one file with the rest: fewer files for a restore to read, and a file a later
    /// merge can link.
    /// </summary>
    internal const int MaxLayers = 16;

    /// <summary>
    /// Links the page files of the chain worth taking in into <paramref name="writer"/>'s checkpoint.
    /// Returns, for each page file name, where each linked file was (source, layer) and its layer now.
    /// </summary>
    public static Dictionary<string, Dictionary<PageFileRef, uint>> Link(CheckpointReader reader, CheckpointWriter writer, IEnumerable<CheckpointMerger.RunList> lists)
    {
        var layers = new Dictionary<string, Dictionary<PageFileRef, uint>>();
        foreach (var file in lists.GroupBy(l => l.FileName))
        {
            var linked = layers[file.Key] = [];
            var inUse = BytesInUse(file.SelectMany(l => l.Runs));
            long total = inUse.Values.Sum();
            foreach (var (where, used) in inUse.OrderByDescending(f => f.Value))
            {
                if (used < LinkAtLeastBytes || used < total / MaxLayers)
                    break;
                var from = reader.Source(where.Source);
                string name = ImageFormat.LayerFileName(file.Key, where.Layer);
                if (used * 2 < (long)from.GetFileEntry(name).Size - ImageFormat.PageSize)
                    continue; // mostly pages replaced since: what is left is copied out
                uint layer = (uint)linked.Count + 1;
                if (writer.TryLinkPageFile(ImageFormat.LayerFileName(file.Key, layer), from, name))
                    linked[where] = layer;
            }
        }
        return layers;
    }

    /// <summary>The bytes of each page file that the runs use (a compressed block once, however many runs slice it).</summary>
    private static Dictionary<PageFileRef, long> BytesInUse(IEnumerable<PageRun> runs)
    {
        var used = new Dictionary<PageFileRef, long>();
        var blocks = new HashSet<(PageFileRef, ulong)>();
        foreach (var run in runs)
        {
            long bytes = !run.IsBlock ? (long)run.Count * ImageFormat.PageSize
                : blocks.Add((run.StoredIn, run.FileOffset)) ? run.StoredLength : 0;
            used[run.StoredIn] = used.GetValueOrDefault(run.StoredIn) + bytes;
        }
        return used;
    }
}
