using Amber.Image;
using Amber.Image.Schema;

namespace Amber.Checkpoint.Memory;

/// <summary>
/// The pages an earlier checkpoint saved for a range of memory (a process's address space, or a
/// shared object), page by page: where each is kept (the source checkpoint and file offset, in the
/// numbering of the checkpoint being written) and its checksum. An incremental checkpoint stores a
/// page again only if it changed; otherwise it refers to the copy already kept.
/// </summary>
public sealed class ParentPages
{
    private const ulong PageSize = ImageFormat.PageSize;
    private readonly List<PageRun> _runs;
    private readonly Func<uint, uint> _source;

    /// <param name="runs">The earlier checkpoint's runs, in address order.</param>
    /// <param name="source">Maps a source of the earlier checkpoint to the new checkpoint's (<see cref="Sources"/>).</param>
    public ParentPages(IEnumerable<PageRun> runs, Func<uint, uint> source)
    {
        _runs = [.. runs.OrderBy(r => r.Address)];
        _source = source;
    }

    /// <summary>The earlier copy of the page at <paramref name="address"/>, if it was saved.</summary>
    public bool TryGet(ulong address, out ulong xxh3, out uint source, out ulong fileOffset)
    {
        int lo = 0, hi = _runs.Count - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var run = _runs[mid];
            if (address < run.Address)
                hi = mid - 1;
            else if (address >= run.Address + run.Count * PageSize)
                lo = mid + 1;
            else
            {
                int page = (int)((address - run.Address) / PageSize);
                xxh3 = run.PageXxh3[page];
                source = _source(run.Source);
                fileOffset = run.FileOffset + (ulong)page * PageSize;
                return true;
            }
        }
        xxh3 = 0;
        source = 0;
        fileOffset = 0;
        return false;
    }
}

/// <summary>
/// The checkpoints an incremental checkpoint's page runs refer to (its manifest's sources): its
/// parent, and whatever the parent itself referred to, each once. Source 0 is the new checkpoint.
/// </summary>
public sealed class Sources
{
    private readonly List<string> _names = [];
    private readonly Dictionary<uint, uint> _fromParent = [];

    public Sources(string parentName, IReadOnlyList<string> parentSources)
    {
        _names.Add(parentName);
        _fromParent[0] = 1;
        for (int i = 0; i < parentSources.Count; i++)
        {
            int at = _names.IndexOf(parentSources[i]);
            if (at < 0)
            {
                _names.Add(parentSources[i]);
                at = _names.Count - 1;
            }
            _fromParent[(uint)i + 1] = (uint)at + 1;
        }
    }

    public IReadOnlyList<string> Names => _names;

    /// <summary>A source of the parent checkpoint, in the new checkpoint's numbering.</summary>
    public uint FromParent(uint parentSource) =>
        _fromParent.TryGetValue(parentSource, out uint s) ? s : throw new CheckpointException($"the parent checkpoint refers to source {parentSource}, which it does not list");
}
