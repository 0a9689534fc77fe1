using Amber.Image;
using Amber.Image.Schema;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// The pages an earlier checkpoint saved for a range of memory (a process's address space, or a
/// shared object), page by page: where each is kept (the source checkpoint and file offset, in the
/// numbering of the checkpoint being written) and its checksum. An incremental checkpoint stores a
/// page again only if it changed; otherwise it refers to the copy already kept.
/// </summary>
public sealed class ParentPages
{
    private readonly Run[] _runs;
    private readonly (ulong Start, ulong End)[] _bounds;

    /// <param name="runs">The earlier checkpoint's runs.</param>
    /// <param name="source">Maps a source of the earlier checkpoint to the new checkpoint's (<see cref="Sources"/>).</param>
    public ParentPages(IEnumerable<PageRun> runs, Func<uint, uint> source)
    {
        // Copied once (before any freeze) into plain arrays: slicing them is what an incremental
        // checkpoint does most, for every stretch of pages known unchanged.
        _runs = [.. runs.OrderBy(r => r.Address).Select(r => new Run(r.Address, r.Address + r.Count * ImageFormat.PageSize,
            new PageRun { Address = r.Address, Count = r.Count, FileOffset = r.FileOffset, Source = source(r.Source), Layer = r.Layer, Codec = r.Codec, StoredLength = r.StoredLength, Skip = r.Skip, Nonce = r.Nonce, Tag = r.Tag },
            [.. r.PageXxh3]))];
        _bounds = [.. _runs.Select(r => (r.Start, r.End))];
    }

    /// <summary>The earlier copy of the page at <paramref name="address"/>, if it was saved: its checksum, and a run of that one page where it is kept.</summary>
    public bool TryGet(ulong address, out ulong xxh3, out PageRun? kept)
    {
        int lo = 0, hi = _runs.Length - 1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            var run = _runs[mid];
            if (address < run.Start)
                hi = mid - 1;
            else if (address >= run.End)
                lo = mid + 1;
            else
            {
                int page = (int)((address - run.Start) / ImageFormat.PageSize);
                xxh3 = run.Hashes[page];
                kept = Slice(run.Where, run.Hashes, page, 1);
                return true;
            }
        }
        xxh3 = 0;
        kept = null;
        return false;
    }

    /// <summary>
    /// Pages [first, first + count) of <paramref name="run"/> (its checksums <paramref name="hashes"/>)
    /// as a run of their own, kept where they are: at their own offset, or in the same block (compressed or encrypted).
    /// </summary>
    public static PageRun Slice(PageRun run, ulong[] hashes, int first, int count)
    {
        bool compressed = run.IsBlock;
        var slice = new PageRun
        {
            Address = run.Address + (ulong)first * ImageFormat.PageSize, Count = (ulong)count, Source = run.Source, Layer = run.Layer, Codec = run.Codec, StoredLength = run.StoredLength,
            Nonce = run.Nonce, Tag = run.Tag,
            FileOffset = compressed ? run.FileOffset : run.FileOffset + (ulong)first * ImageFormat.PageSize, Skip = compressed ? run.Skip + (uint)first : 0,
        };
        // An array (an ICollection): copied in at once, where a segment would be added one by one.
        slice.PageXxh3.AddRange(hashes[first..(first + count)]);
        return slice;
    }

    /// <summary>Takes <paramref name="page"/> (a run of one page) into <paramref name="run"/> if it goes on where the run is kept.</summary>
    public static bool TryExtend(PageRun run, PageRun page)
    {
        if (!Continues(run, page))
            return false;
        run.Count++;
        run.PageXxh3.Add(page.PageXxh3[0]);
        return true;
    }

    /// <summary>Whether <paramref name="next"/> goes on where <paramref name="run"/> is kept, so that the run can take it in.</summary>
    public static bool Continues(PageRun run, PageRun next) =>
        run.StoredIn == next.StoredIn && run.Codec == next.Codec && run.Encrypted == next.Encrypted && run.Address + run.Count * ImageFormat.PageSize == next.Address
        && (!run.IsBlock
            ? run.FileOffset + run.Count * ImageFormat.PageSize == next.FileOffset
            : run.FileOffset == next.FileOffset && run.StoredLength == next.StoredLength && run.Skip + run.Count == next.Skip);

    /// <summary>A walk over the runs in address order, for addresses that only grow.</summary>
    public Cursor Walk() => new(_runs, _bounds);

    /// <param name="Where">Where the run is kept (source in the new checkpoint's numbering; no checksums).</param>
    internal sealed record Run(ulong Start, ulong End, PageRun Where, ulong[] Hashes);

    public sealed class Cursor
    {
        private readonly Run[] _runs;
        private readonly RangeCursor _walk;

        internal Cursor(Run[] runs, (ulong Start, ulong End)[] bounds)
        {
            _runs = runs;
            _walk = new RangeCursor(bounds);
        }

        /// <summary>Whether the page at <paramref name="address"/> was saved; either way, up to where that holds.</summary>
        public bool Covers(ulong address, out ulong until) => _walk.Inside(address, out until);

        /// <summary>The runs that keep [start, end), all of it saved: slices of the earlier runs, pointing where they are kept.</summary>
        public IEnumerable<PageRun> Keep(ulong start, ulong end)
        {
            for (ulong at = start; at < end;)
            {
                if (!Covers(at, out ulong until))
                    throw new InvalidOperationException($"page {at:x} was not saved by the earlier checkpoint");
                var run = _runs[_walk.At];
                ulong stop = Math.Min(end, until);
                int first = (int)((at - run.Start) / ImageFormat.PageSize), count = (int)((stop - at) / ImageFormat.PageSize);
                yield return Slice(run.Where, run.Hashes, first, count);
                at = stop;
            }
        }
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
