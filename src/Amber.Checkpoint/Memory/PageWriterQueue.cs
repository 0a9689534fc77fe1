using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using Amber.Image;
using Amber.Image.Schema;

namespace Amber.Checkpoint.Memory;

/// <summary>
/// Overlaps copying memory out of the target with writing it to the image: the tracer thread fills
/// buffers (process_vm_readv) and hands them over; one writer thread hashes and appends them in
/// order and records the page runs. A few buffers circulate, so memory use stays bounded.
/// </summary>
public sealed class PageWriterQueue : IDisposable
{
    private const int Buffers = 3;

    private readonly PageFileWriter _pages;
    private readonly MmImage _mm;
    private readonly BlockingCollection<Chunk> _work = new(Buffers);
    private readonly BlockingCollection<PageBuffer> _free = new(Buffers);
    private readonly Thread _writer;
    private ExceptionDispatchInfo? _failure;

    public PageWriterQueue(PageFileWriter pages, MmImage mm, int bufferSize)
    {
        _pages = pages;
        _mm = mm;
        for (int i = 0; i < Buffers; i++)
            _free.Add(new PageBuffer(bufferSize));
        _writer = new Thread(WriteLoop) { Name = "amber-page-writer", IsBackground = true };
        _writer.Start();
    }

    public long PagesWritten { get; private set; }

    /// <summary>A buffer to fill; give it back with <see cref="Submit"/> or <see cref="Release"/>.</summary>
    public PageBuffer Rent()
    {
        ThrowIfFailed();
        return _free.Take();
    }

    /// <summary>
    /// Queues what to record for a buffer of memory, in address order: stretches of it to store
    /// (offset in the buffer, length, the checksums of their pages, taken by the caller in parallel
    /// with the writes) and runs kept where an earlier checkpoint stored them.
    /// </summary>
    public void Submit(PageBuffer buffer, List<Item> items)
    {
        ThrowIfFailed();
        _work.Add(new Chunk(buffer, items));
    }

    /// <summary>Records a run kept where an earlier checkpoint stored it (nothing to write).</summary>
    public void Reference(PageRun run)
    {
        ThrowIfFailed();
        _work.Add(new Chunk(null, [Item.Kept(run)]));
    }

    public void Release(PageBuffer buffer) => _free.Add(buffer);

    /// <summary>Waits for every queued write; rethrows a writer failure.</summary>
    public void Complete()
    {
        _work.CompleteAdding();
        _writer.Join();
        ThrowIfFailed();
    }

    public void Dispose()
    {
        if (!_work.IsAddingCompleted)
            _work.CompleteAdding();
        _writer.Join();
        _work.Dispose();
        _free.Dispose();
    }

    private void WriteLoop()
    {
        foreach (var chunk in _work.GetConsumingEnumerable())
        {
            try
            {
                foreach (var item in _failure is null ? chunk.Items : [])
                {
                    if (item.Reference is { } kept)
                    {
                        _mm.Pages.Add(kept);
                        continue;
                    }
                    ulong fileOffset = _pages.AppendData(chunk.Buffer!.Span.Slice(item.Offset, item.Length));
                    ulong count = (ulong)(item.Length / ImageFormat.PageSize);
                    _mm.Pages.Add(new PageRun { Address = item.Address, Count = count, FileOffset = fileOffset, PageXxh3 = { item.PageXxh3! } });
                    PagesWritten += (long)count;
                }
            }
            catch (Exception e)
            {
                _failure = ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                if (chunk.Buffer is not null)
                    _free.Add(chunk.Buffer);
            }
        }
    }

    private void ThrowIfFailed() => _failure?.Throw();

    /// <summary>One thing to record: pages of the buffer to store, or a run kept elsewhere.</summary>
    public readonly record struct Item(ulong Address, int Offset, int Length, ulong[]? PageXxh3, PageRun? Reference)
    {
        public static Item Stored(ulong address, int offset, int length, ulong[] pageXxh3) => new(address, offset, length, pageXxh3, null);

        public static Item Kept(PageRun run) => new(run.Address, 0, 0, null, run);
    }

    private readonly record struct Chunk(PageBuffer? Buffer, List<Item> Items);
}
