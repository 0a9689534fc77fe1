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
/// Runs are at most <see cref="MaxRunPages"/> long: each run is one checksum and one pread at restore.
/// Reading (here, on the tracer thread) overlaps with writing (<see cref="PageWriterQueue"/>).
/// </summary>
public sealed class MemoryDumper(RemoteMemory memory, PageMap pageMap, PageFileWriter pages, CancellationToken cancel)
{
    public const int MaxRunPages = 1024;
    private const int PageSize = 4096;
    private const int PageMapBatch = 32768;

    private int _runsCopied;

    public long PagesWritten { get; private set; }

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
                ulong runStart = 0;
                int runPages = 0;
                for (ulong at = vma.Start; at < vma.End;)
                {
                    int batch = (int)Math.Min(PageMapBatch, (vma.End - at) / PageSize);
                    pageMap.Read(at, entries.AsSpan(0, batch));
                    for (int i = 0; i < batch; i++)
                    {
                        ulong e = entries[i];
                        bool present = (e & (PageMap.Present | PageMap.Swapped)) != 0;
                        bool owned = present && (anonymous || (e & PageMap.FileOrShared) == 0 || (e & PageMap.Swapped) != 0);
                        ulong page = at + (ulong)i * PageSize;
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
        var stretches = new List<(ulong, int, int)>(1);
        if (!skipZeroPages)
        {
            stretches.Add((address, 0, data.Length));
        }
        else
        {
            foreach (var (first, pages) in ZeroPages.NonZeroStretches(data))
                stretches.Add((address + (ulong)first * PageSize, first * PageSize, pages * PageSize));
        }
        if (stretches.Count == 0)
            queue.Release(buffer);
        else
            queue.Submit(buffer, stretches);
    }
}
