using System.Buffers;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Memory;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// Copies the pages a process owns into the page file. Which pages: /proc/PID/pagemap says which are
/// present or swapped; in private file mappings only pages the process wrote (copy-on-write, "not a
/// file page") are saved, never the file's own pages; pages never touched are not saved; pages of
/// anonymous memory that read as zero are skipped too (they come back as zero anyway).
/// An incremental checkpoint (<paramref name="parent"/>) stores a page only if it differs from the
/// copy the earlier checkpoint kept (same checksum: the run refers to that copy instead); with
/// dirty tracking (the written pages given to <see cref="Dump"/>), a page known not written since is not even read.
/// Runs stored are at most <see cref="MaxRunPages"/> long (runs kept are slices of the earlier
/// checkpoint's). Reading (here, on the tracer thread) overlaps with writing (<see cref="PageWriterQueue"/>).
/// <see cref="Dump"/> is all that needs the process stopped; <see cref="Finish"/> then waits for the
/// writes and describes the pages in the image (slicing the earlier checkpoint's runs, the slow part
/// when a long chain has fragmented them) while it runs again.
/// </summary>
public sealed class MemoryDumper(
    RemoteMemory memory, PageMap pageMap, PageFileWriter pages, PageCopyPool pool, CancellationToken cancel, ParentPages? parent = null,
    Codec codec = Codec.None) : IDisposable
{
    public const int MaxRunPages = 1024;

    /// <summary>The size of the buffers pages are copied into.</summary>
    public const int BufferSize = MaxRunPages * ImageFormat.PageSize;
    private const int PageMapBatch = 32768;

    public long PagesWritten { get; private set; }

    /// <summary>Pages kept from the earlier checkpoint (not written again).</summary>
    public long PagesKept => _keptUnread + _keptSame;

    private long _keptUnread; // known unwritten (tracer thread)
    private long _keptSame;   // read, and the same as before (writer thread)

    /// <summary>Of those, the pages dirty tracking knew unwritten: not even read.</summary>
    public long PagesSkipped { get; private set; }

    private PageWriterQueue? _queue;
    private Task<List<(ulong Start, ulong End, ulong Categories)>[]>? _presentScan;

    /// <summary>
    /// Starts the walk of the page tables for the pages present in the mappings of <paramref name="mm"/>
    /// (PAGEMAP_SCAN) on a thread of its own, so that it overlaps with taking the written pages, the
    /// other walk made while the process is stopped. <see cref="Dump"/> uses what it found.
    /// </summary>
    public void StartScan(MmImage mm)
    {
        if (!PageMap.CanScan)
            return;
        var vmas = mm.Vmas.Where(VmaClassifier.HoldsPages).ToArray();
        _presentScan = Task.Factory.StartNew(() => Array.ConvertAll(vmas, vma =>
        {
            var scanned = new List<(ulong Start, ulong End, ulong Categories)>();
            pageMap.Scan(vma.Start, vma.End, scanned, fileCategory: !VmaClassifier.IsAnonymous(vma));
            return scanned;
        }), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    /// <summary>
    /// Copies the pages of <paramref name="mm"/> out of the stopped process (with dirty tracking,
    /// <paramref name="written"/>, only those written since the earlier checkpoint); their writing
    /// may go on after, until <see cref="Finish"/>.
    /// </summary>
    /// <param name="preCopied">
    /// The pages written before the freeze, copied while the process still ran (with
    /// <paramref name="written"/>): those not written again are taken from there instead of read.
    /// Its buffers go to the writer (or back to the pool) here.
    /// </param>
    public void Dump(MmImage mm, WrittenPages? written = null, PreCopiedPages? preCopied = null)
    {
        var entries = ArrayPool<ulong>.Shared.Rent(PageMapBatch);
        var queue = _queue = new PageWriterQueue(pages, pool, Expand, codec);
        var copies = new Gather(queue, pool, memory, cancel);
        var saved = parent?.Walk();
        try
        {
            if (PageMap.CanScan && _presentScan is null)
                StartScan(mm);
            var present = _presentScan?.GetAwaiter().GetResult();
            int scannedVma = 0;
            foreach (var vma in mm.Vmas)
            {
                if (!VmaClassifier.HoldsPages(vma))
                    continue;
                bool anonymous = VmaClassifier.IsAnonymous(vma);
                var writes = written?.WalkIn(vma.Start, vma.End) is { } cursor
                    ? new Writes(cursor, preCopied is null ? null : written.WalkWrittenSince(), preCopied)
                    : null;
                if (present is not null)
                {
                    OwnedByScan(copies, present[scannedVma++], anonymous, writes, saved);
                    continue;
                }
                // pagemap has an entry per page of the machine (Page.Size); the runs stored count
                // pages of the image format (ImageFormat.PageSize), the same size (see there).
                for (ulong at = vma.Start; at < vma.End;)
                {
                    int batch = (int)Math.Min(PageMapBatch, (vma.End - at) / Page.Size);
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
                        Stretch(copies, at + (ulong)i * Page.Size, at + (ulong)j * Page.Size, anonymous, writes, saved);
                        i = j;
                    }
                    at += (ulong)batch * Page.Size;
                }
            }
            copies.Flush();
            preCopied?.SubmitTo(queue);
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(entries);
        }
    }

    /// <summary>
    /// What dirty tracking says for one mapping: the pages written since the earlier checkpoint
    /// (<see cref="Written"/>), and with a copy taken before the freeze, those written again after
    /// it (<see cref="Since"/>, read now) and the copy (<see cref="PreCopied"/>, used for the others).
    /// </summary>
    private sealed record Writes(RangeCursor Written, RangeCursor? Since, PreCopiedPages? PreCopied);

    /// <summary>
    /// Waits for the pages <see cref="Dump"/> copied to be written (rethrowing a failure to write
    /// them), then records the runs of pages saved or kept into <paramref name="mm"/>, in address order.
    /// </summary>
    public void Finish(MmImage mm)
    {
        var queue = _queue ?? throw new InvalidOperationException("nothing dumped");
        queue.Complete();
        PagesWritten = queue.PagesWritten;
        var saved = parent?.Walk();
        // Pages copied before the freeze are queued after the rest: the runs are put in order here.
        foreach (var record in queue.Recorded.OrderBy(r => r.Run?.Address ?? r.KeptStart))
        {
            if (record.Run is { } run)
                mm.Pages.Add(run);
            else
                mm.Pages.AddRange(saved!.Keep(record.KeptStart, record.KeptEnd));
        }
        Dispose();
    }

    /// <summary>Stops the writer (what it did not write yet is dropped with the checkpoint) and the page table walk.</summary>
    public void Dispose()
    {
        try
        {
            _presentScan?.Wait();
        }
        catch (AggregateException)
        {
            // A walk that failed is only of interest to a dump that uses it.
        }
        _presentScan = null;
        _queue?.Dispose();
        _queue = null;
    }

    /// <summary>The pages of a mapping that are the process's own, of the ranges PAGEMAP_SCAN listed (<paramref name="scanned"/>).</summary>
    private void OwnedByScan(Gather copies, List<(ulong Start, ulong End, ulong Categories)> scanned, bool anonymous, Writes? writes,
        ParentPages.Cursor? saved)
    {
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
    /// the shared zero page is not (it reads as zero, as a page never touched), nor a guard page (no
    /// page at all, though the kernel says swapped: reading it fails; its Vma says where they are).
    /// </summary>
    private static bool OwnedByCategories(ulong categories, bool anonymous) =>
        (categories & (PageMap.ScanPresent | PageMap.ScanSwapped)) != 0 && (categories & (PageMap.ScanZeroPage | PageMap.ScanGuard)) == 0
        && (anonymous || (categories & PageMap.ScanFile) == 0 || (categories & PageMap.ScanSwapped) != 0);

    /// <summary>
    /// Present or swapped, and the process's own: in a private file mapping only pages it wrote
    /// (copy-on-write), never the file's own pages.
    /// </summary>
    private static bool Owned(ulong entry, bool anonymous) =>
        (entry & (PageMap.Present | PageMap.Swapped)) != 0 && (entry & PageMap.GuardRegion) == 0 && (anonymous || (entry & PageMap.FileOrShared) == 0 || (entry & PageMap.Swapped) != 0);

    /// <summary>
    /// Pages [start, end), all owned. With dirty tracking and an earlier checkpoint, a stretch not
    /// written since is kept where that checkpoint saved it, unread; the rest is copied.
    /// </summary>
    private void Stretch(Gather copies, ulong start, ulong end, bool anonymous, Writes? writes, ParentPages.Cursor? saved)
    {
        if (writes is null || saved is null)
        {
            copies.Copy(start, end, anonymous);
            return;
        }
        for (ulong at = start; at < end;)
        {
            bool dirty = writes.Written.Inside(at, out ulong until);
            ulong stop = Math.Min(end, until);
            if (dirty)
            {
                CopyWritten(copies, at, stop, anonymous, writes);
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
                    _keptUnread += (long)((part - at) / ImageFormat.PageSize);
                    PagesSkipped += (long)((part - at) / ImageFormat.PageSize);
                }
                else
                    copies.Copy(at, part, anonymous); // not saved then (it read as zero): read it now
                at = part;
            }
        }
    }

    /// <summary>
    /// Written pages [start, end): read now, but for those copied before the freeze and not written since.
    /// </summary>
    private static void CopyWritten(Gather copies, ulong start, ulong end, bool anonymous, Writes writes)
    {
        if (writes is not { Since: { } since, PreCopied: { } preCopied })
        {
            copies.Copy(start, end, anonymous);
            return;
        }
        for (ulong at = start; at < end;)
        {
            ulong stop;
            if (since.Inside(at, out ulong until))
            {
                stop = Math.Min(end, until);
                copies.Copy(at, stop, anonymous);
            }
            else if (preCopied.Covers(at, out ulong copiedUntil))
            {
                stop = Math.Min(end, Math.Min(until, copiedUntil));
                preCopied.Use(at, stop, anonymous);
            }
            else
            {
                stop = Math.Min(end, Math.Min(until, copiedUntil));
                copies.Copy(at, stop, anonymous);
            }
            at = stop;
        }
    }

    /// <summary>
    /// What is to be recorded next, in address order: ranges to copy, gathered into one buffer and
    /// read with one process_vm_readv (scattered written pages cost one call, not one each), and
    /// runs kept from the earlier checkpoint between them.
    /// </summary>
    private sealed class Gather(PageWriterQueue queue, PageCopyPool pool, RemoteMemory memory, CancellationToken cancel)
    {
        private readonly List<(ulong Address, int Length)> _reads = pool.Reads;
        private List<PageWriterQueue.Item> _items = pool.RentList();
        private PageBuffer? _buffer;
        private int _used;
        private int _flushes;

        public void Copy(ulong start, ulong end, bool anonymous)
        {
            for (ulong at = start; at < end;)
            {
                _buffer ??= queue.Rent();
                if (_used == _buffer.Length || _reads.Count == RemoteMemory.MaxScattered || _items.Count >= PageCopyPool.ListCapacity)
                {
                    Flush();
                    _buffer = queue.Rent();
                }
                int length = (int)Math.Min(end - at, (ulong)(_buffer.Length - _used));
                _reads.Add((at, length));
                _items.Add(PageWriterQueue.Item.Copied(at, _used, length, anonymous));
                _used += length;
                at += (ulong)length;
            }
        }

        /// <summary>[start, end) kept where the earlier checkpoint kept it.</summary>
        public void KeepAsBefore(ulong start, ulong end)
        {
            // Next to the last range kept (the earlier runs' bounds split what was not written): one.
            if (_items.Count > 0 && _items[^1] is { KeptEnd: not 0 } last && last.KeptEnd == start)
            {
                _items[^1] = last with { KeptEnd = end };
                return;
            }
            _items.Add(PageWriterQueue.Item.KeptAsBefore(start, end));
            if (_items.Count >= PageCopyPool.ListCapacity)
                Flush();
        }

        public void Flush()
        {
            if (_items.Count == 0)
            {
                if (_buffer is not null)
                    queue.Release(_buffer);
                _buffer = null;
                return;
            }
            cancel.ThrowIfCancellationRequested();
            if (_reads.Count > 0 && _flushes++ > 0)
                Faults.Check(FaultPoint.DuringPages);
            try
            {
                if (_reads.Count > 0)
                    pool.Read(memory, _reads, _buffer!, _used);
            }
            catch
            {
                if (_buffer is not null)
                    queue.Release(_buffer);
                _buffer = null;
                _reads.Clear();
                throw;
            }
            if (_buffer is null)
                queue.SubmitKept(_items);
            else
                queue.Submit(_buffer, _items);
            _items = pool.RentList();
            _buffer = null;
            _used = 0;
            _reads.Clear();
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
        var stretches = copied.Anonymous ? ZeroPages.NonZeroStretches(data) : [(0, copied.Length / ImageFormat.PageSize)];
        foreach (var (first, count) in stretches)
        {
            var hashes = PageHashes.Of(data.Slice(first * ImageFormat.PageSize, count * ImageFormat.PageSize));
            ulong address = copied.Address + (ulong)first * ImageFormat.PageSize;
            int offset = copied.Offset + first * ImageFormat.PageSize;
            if (parent is null)
                items.Add(PageWriterQueue.Item.Stored(address, offset, count * ImageFormat.PageSize, hashes));
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
            items.Add(PageWriterQueue.Item.Stored(address + (ulong)storedFrom * ImageFormat.PageSize, bufferOffset + storedFrom * ImageFormat.PageSize,
                (end - storedFrom) * ImageFormat.PageSize, hashes[storedFrom..end]));
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
            ulong page = address + (ulong)i * ImageFormat.PageSize;
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
