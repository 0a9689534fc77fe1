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
/// Runs are at most <see cref="MaxRunPages"/> long. Reading (here, on the tracer thread) overlaps
/// with writing (<see cref="PageWriterQueue"/>).
/// </summary>
public sealed class MemoryDumper(
    RemoteMemory memory, PageMap pageMap, PageFileWriter pages, CancellationToken cancel, ParentPages? parent = null, WrittenPages? written = null)
{
    public const int MaxRunPages = 1024;
    private const int PageSize = 4096;
    private const int PageMapBatch = 32768;

    private int _runsCopied;

    public long PagesWritten { get; private set; }

    /// <summary>Pages kept from the earlier checkpoint (not written again).</summary>
    public long PagesKept { get; private set; }

    /// <summary>Of those, the pages dirty tracking knew unwritten: not even read.</summary>
    public long PagesSkipped { get; private set; }

    public void Dump(MmImage mm)
    {
        var entries = ArrayPool<ulong>.Shared.Rent(PageMapBatch);
        using var queue = new PageWriterQueue(pages, mm, MaxRunPages * PageSize);
        try
        {
            foreach (var vma in mm.Vmas)
            {
                if (!VmaClassifier.HoldsPages(vma))
                    continue;
                bool anonymous = VmaClassifier.IsAnonymous(vma);
                var clean = written?.CleanIn(vma.Start, vma.End);
                ulong runStart = 0;
                int runPages = 0;
                PageRun? kept = null;
                for (ulong at = vma.Start; at < vma.End;)
                {
                    int batch = (int)Math.Min(PageMapBatch, (vma.End - at) / PageSize);
                    pageMap.Read(at, entries.AsSpan(0, batch));
                    for (int i = 0; i < batch; i++)
                    {
                        ulong e = entries[i];
                        ulong page = at + (ulong)i * PageSize;
                        bool present = (e & (PageMap.Present | PageMap.Swapped)) != 0;
                        bool owned = present && (anonymous || (e & PageMap.FileOrShared) == 0 || (e & PageMap.Swapped) != 0);
                        // Not written since the earlier checkpoint, which kept it: refer to that copy unread.
                        if (owned && clean is not null && clean(page) && parent!.TryGet(page, out ulong xxh3, out uint source, out ulong offset))
                        {
                            if (runPages > 0)
                                CopyRun(queue, runStart, runPages, anonymous);
                            runPages = 0;
                            kept = Extend(queue, kept, page, xxh3, source, offset);
                            continue;
                        }
                        kept = Flush(queue, kept);
                        if (owned && runPages > 0 && runStart + (ulong)runPages * PageSize == page && runPages < MaxRunPages)
                        {
                            runPages++;
                            continue;
                        }
                        if (runPages > 0)
                            CopyRun(queue, runStart, runPages, anonymous);
                        runPages = owned ? 1 : 0;
                        runStart = page;
                    }
                    at += (ulong)batch * PageSize;
                }
                Flush(queue, kept);
                if (runPages > 0)
                    CopyRun(queue, runStart, runPages, anonymous);
            }
            queue.Complete();
            PagesWritten = queue.PagesWritten;
        }
        finally
        {
            ArrayPool<ulong>.Shared.Return(entries);
        }
    }

    /// <summary>Adds a kept page to the run of kept pages being built, or starts a new one.</summary>
    private PageRun Extend(PageWriterQueue queue, PageRun? kept, ulong page, ulong xxh3, uint source, ulong offset)
    {
        PagesKept++;
        PagesSkipped++;
        if (kept is not null && kept.Source == source && kept.Address + kept.Count * PageSize == page
            && kept.FileOffset + kept.Count * PageSize == offset && kept.Count < MaxRunPages)
        {
            kept.Count++;
            kept.PageXxh3.Add(xxh3);
            return kept;
        }
        Flush(queue, kept);
        return new PageRun { Address = page, Count = 1, FileOffset = offset, Source = source, PageXxh3 = { xxh3 } };
    }

    private static PageRun? Flush(PageWriterQueue queue, PageRun? kept)
    {
        if (kept is not null)
            queue.Reference(kept);
        return null;
    }

    private void CopyRun(PageWriterQueue queue, ulong address, int count, bool skipZeroPages)
    {
        cancel.ThrowIfCancellationRequested();
        if (_runsCopied++ > 0)
            Faults.Check(FaultPoint.DuringPages);
        var buffer = queue.Rent();
        var data = buffer.Span[..(count * PageSize)];
        try
        {
            memory.ReadBulk(address, data);
        }
        catch
        {
            queue.Release(buffer);
            throw;
        }
        var items = new List<PageWriterQueue.Item>(1);
        var stretches = skipZeroPages ? ZeroPages.NonZeroStretches(data) : [(0, count)];
        foreach (var (first, pagesInStretch) in stretches)
        {
            var stretch = data.Slice(first * PageSize, pagesInStretch * PageSize);
            var hashes = PageHashes.Of(stretch);
            if (parent is null)
            {
                items.Add(PageWriterQueue.Item.Stored(address + (ulong)first * PageSize, first * PageSize, stretch.Length, hashes));
                continue;
            }
            SplitAgainstParent(items, address + (ulong)first * PageSize, first * PageSize, hashes);
        }
        if (items.Count == 0)
            queue.Release(buffer);
        else
            queue.Submit(buffer, items);
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
            if (parent!.TryGet(page, out ulong xxh3, out uint source, out ulong offset) && xxh3 == hashes[i])
            {
                EndStored(i);
                PagesKept++;
                if (kept is not null && kept.Source == source && kept.FileOffset + kept.Count * PageSize == offset)
                {
                    kept.Count++;
                    kept.PageXxh3.Add(xxh3);
                }
                else
                {
                    EndKept();
                    kept = new PageRun { Address = page, Count = 1, FileOffset = offset, Source = source, PageXxh3 = { xxh3 } };
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
