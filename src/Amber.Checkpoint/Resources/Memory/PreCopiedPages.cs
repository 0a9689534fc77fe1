using System.Runtime.InteropServices;
using Amber.Image;
using Amber.Kernel.Memory;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// The pages dirty tracking found written since the last checkpoint, copied out while the process
/// still runs, just after the scan that found them protected them again — so that the freeze has
/// only what is written after that scan to read. What the copy holds is what the page holds at the
/// freeze, unless the page changed in between, and then the scan under the freeze says so: a write
/// leaves it written, memory mapped anew there is not registered and reads as all written, memory
/// let go of (MADV_DONTNEED) is not present any more. The dump uses a copy only for a page it owns
/// under the freeze that the scan there did not find written (<see cref="MemoryDumper"/>).
/// A copy that could not be taken (the process unmapped the memory meanwhile) is simply not there:
/// those pages are read under the freeze, as without this.
/// </summary>
public sealed class PreCopiedPages : IDisposable
{
    private readonly List<Chunk> _chunks = [];
    private readonly List<Copy> _copies = []; // in address order
    private RangeCursor _walk = new([]);
    private int _handedOver; // chunks given to the writer (or back to the pool)

    private readonly PageCopyPool _pool;

    private PreCopiedPages(PageCopyPool pool) => _pool = pool;

    /// <summary>Pages the dump took from here.</summary>
    public long PagesUsed { get; private set; }

    /// <summary>The buffers of the pool it holds.</summary>
    public int Buffers => _chunks.Count - _handedOver;

    /// <summary>
    /// Copies the pages of <paramref name="written"/> that lie in <paramref name="own"/> (both sorted,
    /// page-aligned ranges: memory that holds the process's own pages, as the dump reads it) out of
    /// the running process, into at most <paramref name="buffers"/> buffers of <paramref name="pool"/>:
    /// as much as fits. Reads with process_vm_readv only, which never reaches past memory a process
    /// can read itself (no device memory).
    /// </summary>
    public static PreCopiedPages Read(RemoteMemory memory, IReadOnlyList<(ulong Start, ulong End)> written,
        IReadOnlyList<(ulong Start, ulong End)> own, PageCopyPool pool, int buffers)
    {
        written = Within(written, own);
        var copied = new PreCopiedPages(pool);
        var reads = pool.Reads;
        reads.Clear();
        try
        {
            int next = 0;
            ulong at = written.Count > 0 ? written[0].Start : 0;
            while (next < written.Count && copied._chunks.Count < buffers && pool.Buffers.TryRent(out var buffer))
            {
                int used = 0;
                while (next < written.Count && used < buffer.Length && reads.Count < RemoteMemory.MaxScattered)
                {
                    int length = (int)Math.Min(written[next].End - at, (ulong)(buffer.Length - used));
                    reads.Add((at, length));
                    used += length;
                    at += (ulong)length;
                    if (at == written[next].End && ++next < written.Count)
                        at = written[next].Start;
                }
                long read = memory.TryReadScattered(CollectionsMarshal.AsSpan(reads), buffer.Span[..used]);
                if (read >= ImageFormat.PageSize)
                    copied.Keep(buffer, reads, read);
                else
                    pool.Buffers.Return(buffer);
                reads.Clear();
            }
        }
        catch
        {
            reads.Clear();
            copied.Dispose();
            throw;
        }
        copied._walk = new RangeCursor([.. copied._copies.Select(c => (c.Start, c.End))]);
        return copied;
    }

    /// <summary>The parts of <paramref name="ranges"/> inside <paramref name="within"/>.</summary>
    private static List<(ulong Start, ulong End)> Within(IReadOnlyList<(ulong Start, ulong End)> ranges, IReadOnlyList<(ulong Start, ulong End)> within)
    {
        var inside = new List<(ulong, ulong)>();
        for (int i = 0, j = 0; i < ranges.Count && j < within.Count;)
        {
            ulong start = Math.Max(ranges[i].Start, within[j].Start), end = Math.Min(ranges[i].End, within[j].End);
            if (start < end)
                inside.Add((start, end));
            if (ranges[i].End <= within[j].End)
                i++;
            else
                j++;
        }
        return inside;
    }

    /// <summary>Notes what of <paramref name="reads"/> (one after the other in the buffer) the first <paramref name="read"/> bytes filled.</summary>
    private void Keep(PageBuffer buffer, List<(ulong Address, int Length)> reads, long read)
    {
        int chunk = _chunks.Count, offset = 0;
        _chunks.Add(new Chunk(buffer));
        foreach (var (address, length) in reads)
        {
            int filled = (int)Math.Min(length, read - offset) / ImageFormat.PageSize * ImageFormat.PageSize;
            if (filled <= 0)
                break;
            // A copy before this one in the same buffer was filled whole (a short one ends the loop):
            // where the addresses go on, so does the buffer.
            if (_copies.Count > 0 && _copies[^1] is { } last && last.Chunk == chunk && last.End == address)
                _copies[^1] = last with { End = address + (ulong)filled };
            else
                _copies.Add(new Copy(address, address + (ulong)filled, chunk, offset));
            offset += length;
        }
    }

    /// <summary>Whether the page at <paramref name="address"/> was copied; either way, up to where that holds (addresses only grow).</summary>
    public bool Covers(ulong address, out ulong until) => _walk.Inside(address, out until);

    /// <summary>Takes the copy of [start, end), all covered by the copy <see cref="Covers"/> last found, into the dump.</summary>
    public void Use(ulong start, ulong end, bool anonymous)
    {
        var copy = _copies[_walk.At];
        var chunk = _chunks[copy.Chunk];
        chunk.Items ??= _pool.RentList();
        PagesUsed += (long)((end - start) / ImageFormat.PageSize);
        chunk.Items.Add(PageWriterQueue.Item.Copied(start, copy.Offset + (int)(start - copy.Start), (int)(end - start), anonymous));
    }

    /// <summary>
    /// Hands the buffers whose copies the dump uses to its writer, in address order (the page file
    /// then holds them in order, as reads of a restore or a merge want them), and gives back the others.
    /// </summary>
    public void SubmitTo(PageWriterQueue queue)
    {
        _copies.Clear();
        while (_handedOver < _chunks.Count)
        {
            var chunk = _chunks[_handedOver++]; // the queue's from here, even if it refuses it
            if (chunk.Items is { } items)
                queue.Submit(chunk.Buffer, items);
            else
                queue.Release(chunk.Buffer);
        }
    }

    public void Dispose()
    {
        foreach (var chunk in _chunks.Skip(_handedOver))
        {
            _pool.Buffers.Return(chunk.Buffer);
            if (chunk.Items is { } items)
                _pool.ReturnList(items);
        }
        _handedOver = _chunks.Count;
        _copies.Clear();
    }

    private sealed class Chunk(PageBuffer buffer)
    {
        public PageBuffer Buffer { get; } = buffer;

        public List<PageWriterQueue.Item>? Items { get; set; }
    }

    private readonly record struct Copy(ulong Start, ulong End, int Chunk, int Offset);
}
