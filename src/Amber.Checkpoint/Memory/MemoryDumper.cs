using System.Buffers;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Memory;

namespace Amber.Checkpoint.Memory;

/// <summary>
/// Copies the pages a process owns into the page file. Which pages: /proc/PID/pagemap says which are
/// present or swapped; in private file mappings only pages the process wrote (copy-on-write, "not a
/// file page") are saved, never the file's own pages; pages never touched are not saved; pages of
/// anonymous memory that read as zero are skipped too (they come back as zero anyway).
/// An incremental checkpoint (<paramref name="parent"/>) stores a page only if it differs from the
/// copy the earlier checkpoint kept (same checksum: the run refers to that copy instead); with
/// dirty tracking (<paramref name="written"/>), a page known not written since is not even read.
/// Runs stored are at most <see cref="MaxRunPages"/> long (runs kept are slices of the earlier
/// checkpoint's). Reading (here, on the tracer thread) overlaps with writing (<see cref="PageWriterQueue"/>).
/// <see cref="Dump"/> is all that needs the process stopped; <see cref="RecordRuns"/> then describes
/// the pages in the image (slicing the earlier checkpoint's runs, the slow part when a long chain has
/// fragmented them) while it runs again.
/// </summary>
public sealed class MemoryDumper(
    RemoteMemory memory, PageMap pageMap, PageFileWriter pages, CancellationToken cancel, ParentPages? parent = null, WrittenPages? written = null,
    Codec codec = Codec.None)
{
    public const int MaxRunPages = 1024;
    private const int PageSize = 4096;

    /// <summary>The size of the buffers pages are copied into.</summary>
    public const int BufferSize = MaxRunPages * PageSize;
    private const int PageMapBatch = 32768;

    public long PagesWritten { get; private set; }

    /// <summary>Pages kept from the earlier checkpoint (not written again).</summary>
    public long PagesKept => _keptUnread + _keptSame;

    private long _keptUnread; // known unwritten (tracer thread)
    private long _keptSame;   // read, and the same as before (writer thread)

    /// <summary>Of those, the pages dirty tracking knew unwritten: not even read.</summary>
    public long PagesSkipped { get; private set; }

    private IReadOnlyList<PageWriterQueue.Record> _recorded = [];

    public void Dump(MmImage mm)
    {
        var entries = ArrayPool<ulong>.Shared.Rent(PageMapBatch);
        using var queue = new PageWriterQueue(pages, BufferSize, Expand, codec);
        var copies = new Gather(queue, memory, cancel);
        var saved = parent?.Walk();
        var scanned = new List<(ulong Start, ulong End, ulong Categories)>();
        try
        {
            foreach (var vma in mm.Vmas)
            {
                if (!VmaClassifier.HoldsPages(vma))
                    continue;
                bool anonymous = VmaClassifier.IsAnonymous(vma);
                var writes = written?.WalkIn(vma.Start, vma.End);
                if (PageMap.CanScan)
                {
                    OwnedByScan(copies, vma, anonymous, writes, saved, scanned);
                    continue;
                }
                for (ulong at = vma.Start; at < vma.End;)
                {
                    int batch = (int)Math.Min(PageMapBatch, (vma.End - at) / PageSize);
                    pageMap.Read(at, entries.AsSpan(0, batch));
                    for (int i = 0; i < batch;)
                    {
                        if (!Owned(entries[i], anonymous))
                        {
                            i++;
                            continue;
                        }
                        int j = i + 1;
                        while (j < batch && Owned(entries[j], anonymous))
                            j++;
                        Stretch(copies, at + (ulong)i * PageSize, at + (ulong)j * PageSize, anonymous, writes, saved);
                        i = j;
                    }
                    at += (ulong)batch * PageSize;
                }
            }
            copies.Flush();
            queue.Complete();
            PagesWritten = queue.PagesWritten;
            _recorded = queue.Recorded;
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(entries);
        }
    }

    /// <summary>The runs of pages <see cref="Dump"/> saved or kept, into <paramref name="mm"/>, in address order.</summary>
    public void RecordRuns(MmImage mm)
    {
        var saved = parent?.Walk();
        foreach (var record in _recorded)
        {
            if (record.Run is { } run)
                mm.Pages.Add(run);
            else
                mm.Pages.AddRange(saved!.Keep(record.KeptStart, record.KeptEnd));
        }
        _recorded = [];
    }

    /// <summary>The pages of a mapping that are the process's own, listed by PAGEMAP_SCAN as ranges.</summary>
    private void OwnedByScan(Gather copies, Vma vma, bool anonymous, RangeCursor? writes, ParentPages.Cursor? saved,
        List<(ulong Start, ulong End, ulong Categories)> scanned)
    {
        scanned.Clear();
        pageMap.Scan(vma.Start, vma.End, scanned);
        ulong from = 0, to = 0; // owned pages next to each other, not yet handed on
        foreach (var (start, end, categories) in scanned)
        {
            if (!OwnedByCategories(categories, anonymous))
                continue;
            if (start != to)
            {
                if (to != from)
                    Stretch(copies, from, to, anonymous, writes, saved);
                from = start;
            }
            to = end;
        }
        if (to != from)
            Stretch(copies, from, to, anonymous, writes, saved);
    }

    /// <summary>
    /// By scan categories: present or swapped, and the process's own (as <see cref="Owned(ulong, bool)"/>);
    /// the shared zero page is not (it reads as zero, as a page never touched).
    /// </summary>
    private static bool OwnedByCategories(ulong categories, bool anonymous) =>
        (categories & (PageMap.ScanPresent | PageMap.ScanSwapped)) != 0 && (categories & PageMap.ScanZeroPage) == 0
        && (anonymous || (categories & PageMap.ScanFile) == 0 || (categories & PageMap.ScanSwapped) != 0);

    /// <summary>
    /// Present or swapped, and the process's own: in a private file mapping only pages it wrote
    /// (copy-on-write), never the file's own pages.
    /// </summary>
    private static bool Owned(ulong entry, bool anonymous) =>
        (entry & (PageMap.Present | PageMap.Swapped)) != 0 && (anonymous || (entry & PageMap.FileOrShared) == 0 || (entry & PageMap.Swapped) != 0);

    /// <summary>
    /// Pages [start, end), all owned. With dirty tracking and an earlier checkpoint, a stretch not
    /// written since is kept where that checkpoint saved it, unread; the rest is copied.
    /// </summary>
    private void Stretch(Gather copies, ulong start, ulong end, bool anonymous, RangeCursor? writes, ParentPages.Cursor? saved)
    {
        if (writes is null || saved is null)
        {
            copies.Copy(start, end, anonymous);
            return;
        }
        for (ulong at = start; at < end;)
        {
            bool dirty = writes.Inside(at, out ulong until);
            ulong stop = Math.Min(end, until);
            if (dirty)
            {
                copies.Copy(at, stop, anonymous);
                at = stop;
                continue;
            }
            while (at < stop)
            {
                bool kept = saved.Covers(at, out ulong keptUntil);
                ulong part = Math.Min(stop, keptUntil);
                if (kept)
                {
                    copies.KeepAsBefore(at, part);
                    _keptUnread += (long)((part - at) / PageSize);
                    PagesSkipped += (long)((part - at) / PageSize);
                }
                else
                    copies.Copy(at, part, anonymous); // not saved then (it read as zero): read it now
                at = part;
            }
        }
    }

    /// <summary>
    /// What is to be recorded next, in address order: ranges to copy, gathered into one buffer and
    /// read with one process_vm_readv (scattered written pages cost one call, not one each), and
    /// runs kept from the earlier checkpoint between them.
    /// </summary>
    private sealed class Gather(PageWriterQueue queue, RemoteMemory memory, CancellationToken cancel)
    {
        private const int MaxPending = 4096;
        private readonly List<(ulong Address, int Length)> _reads = [];
        private readonly List<(ulong Address, int Offset, int Length, bool Anonymous, ulong KeptEnd)> _pending = [];
        private PageBuffer? _buffer;
        private int _used;
        private int _flushes;

        public void Copy(ulong start, ulong end, bool anonymous)
        {
            for (ulong at = start; at < end;)
            {
                _buffer ??= queue.Rent();
                if (_used == _buffer.Length || _reads.Count == RemoteMemory.MaxScattered)
                {
                    Flush();
                    _buffer = queue.Rent();
                }
                int length = (int)Math.Min(end - at, (ulong)(_buffer.Length - _used));
                _reads.Add((at, length));
                _pending.Add((at, _used, length, anonymous, 0));
                _used += length;
                at += (ulong)length;
            }
        }

        /// <summary>[start, end) kept where the earlier checkpoint kept it.</summary>
        public void KeepAsBefore(ulong start, ulong end)
        {
            _pending.Add((start, 0, 0, false, end));
            if (_pending.Count >= MaxPending)
                Flush();
        }

        public void Flush()
        {
            if (_pending.Count == 0)
            {
                if (_buffer is not null)
                    queue.Release(_buffer);
                _buffer = null;
                return;
            }
            cancel.ThrowIfCancellationRequested();
            if (_reads.Count > 0 && _flushes++ > 0)
                Faults.Check(FaultPoint.DuringPages);
            var items = new List<PageWriterQueue.Item>(_pending.Count);
            try
            {
                if (_reads.Count > 0)
                    memory.ReadScattered(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(_reads), _buffer!.Span[.._used]);
                foreach (var (address, offset, length, anonymous, keptEnd) in _pending)
                    items.Add(keptEnd != 0 ? PageWriterQueue.Item.KeptAsBefore(address, keptEnd) : PageWriterQueue.Item.Copied(address, offset, length, anonymous));
            }
            catch
            {
                if (_buffer is not null)
                    queue.Release(_buffer);
                _buffer = null;
                throw;
            }
            if (_buffer is null)
                queue.SubmitKept(items);
            else
                queue.Submit(_buffer, items);
            _buffer = null;
            _used = 0;
            _reads.Clear();
            _pending.Clear();
        }
    }

    /// <summary>
    /// What to record for pages copied into a buffer, on the writer thread (off the frozen path):
    /// zero pages of anonymous memory left out, checksums taken, and in an incremental checkpoint the
    /// pages equal to the earlier copy referred to instead of stored again.
    /// </summary>
    private void Expand(PageBuffer buffer, PageWriterQueue.Item copied, List<PageWriterQueue.Item> items)
    {
        var data = buffer.Span.Slice(copied.Offset, copied.Length);
        var stretches = copied.Anonymous ? ZeroPages.NonZeroStretches(data) : [(0, copied.Length / PageSize)];
        foreach (var (first, count) in stretches)
        {
            var hashes = PageHashes.Of(data.Slice(first * PageSize, count * PageSize));
            ulong address = copied.Address + (ulong)first * PageSize;
            int offset = copied.Offset + first * PageSize;
            if (parent is null)
                items.Add(PageWriterQueue.Item.Stored(address, offset, count * PageSize, hashes));
            else
                SplitAgainstParent(items, address, offset, hashes);
        }
    }

    /// <summary>
    /// Pages whose checksum equals the earlier checkpoint's copy become references to it; the others
    /// stretches to store. Consecutive pages of either kind stay together.
    /// </summary>
    private void SplitAgainstParent(List<PageWriterQueue.Item> items, ulong address, int bufferOffset, ulong[] hashes)
    {
        int storedFrom = -1;
        PageRun? kept = null;
        void EndStored(int end)
        {
            if (storedFrom < 0)
                return;
            items.Add(PageWriterQueue.Item.Stored(address + (ulong)storedFrom * PageSize, bufferOffset + storedFrom * PageSize,
                (end - storedFrom) * PageSize, hashes[storedFrom..end]));
            storedFrom = -1;
        }
        void EndKept()
        {
            if (kept is not null)
                items.Add(PageWriterQueue.Item.Kept(kept));
            kept = null;
        }
        for (int i = 0; i < hashes.Length; i++)
        {
            ulong page = address + (ulong)i * PageSize;
            if (parent!.TryGet(page, out ulong xxh3, out var earlier) && xxh3 == hashes[i])
            {
                EndStored(i);
                _keptSame++;
                if (kept is null || !ParentPages.TryExtend(kept, earlier!))
                {
                    EndKept();
                    kept = earlier;
                }
                continue;
            }
            EndKept();
            if (storedFrom < 0)
                storedFrom = i;
        }
        EndStored(hashes.Length);
        EndKept();
    }
}
