using System.Collections.Concurrent;
using System.Runtime.ExceptionServices;
using Amber.Image;
using Amber.Image.Schema;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// Overlaps copying memory out of the target with writing it to the image: the tracer thread fills
/// buffers (process_vm_readv) and hands them over; one writer thread hashes and appends them in
/// the order queued and notes the page runs (not always in address order: the pages copied before
/// the freeze come last). The buffers come from a pool the checkpoint
/// shares between its processes, so memory use stays bounded; a pool large enough for every page to
/// copy lets the copying end, and the process run again, before the writes do (<see cref="Complete"/>).
/// Runs kept from an earlier checkpoint are only noted as address ranges: turning them into the
/// image's runs (<see cref="Recorded"/>) waits until the process runs again.
/// </summary>
public sealed class PageWriterQueue : IDisposable
{
    private readonly PageFileWriter _pages;
    private readonly List<Record> _recorded = [];
    private readonly BlockingCollection<Chunk> _work = new();
    private readonly PageCopyPool _pool;
    private readonly Thread _writer;
    private ExceptionDispatchInfo? _failure;

    private readonly Action<PageBuffer, Item, List<Item>> _expand;
    private readonly Codec _codec;

    /// <param name="expand">What to record for pages queued as <see cref="Item.Copied"/>: run on the writer thread.</param>
    /// <param name="codec">Compression of the pages stored (each stored stretch one block, and so where the page file is encrypted).</param>
    public PageWriterQueue(PageFileWriter pages, PageCopyPool pool, Action<PageBuffer, Item, List<Item>> expand, Codec codec = Codec.None)
    {
        _pages = pages;
        _pool = pool;
        _expand = expand;
        _codec = codec;
        _writer = new Thread(WriteLoop) { Name = "amber-page-writer", IsBackground = true };
        _writer.Start();
    }

    public long PagesWritten { get; private set; }

    /// <summary>What was recorded, in the order queued; complete after <see cref="Complete"/>.</summary>
    public IReadOnlyList<Record> Recorded => _recorded;

    /// <summary>A buffer to fill; give it back with <see cref="Submit"/> or <see cref="Release"/>.</summary>
    public PageBuffer Rent()
    {
        ThrowIfFailed();
        if (_pool.Buffers.TryRent(out var free))
            return free;
        _pool.LetWritersGo(); // every buffer is out: only writing frees one
        return _pool.Buffers.Rent();
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

    /// <summary>Records runs kept where an earlier checkpoint stored them (nothing to write).</summary>
    public void SubmitKept(List<Item> kept)
    {
        ThrowIfFailed();
        _work.Add(new Chunk(null, kept));
    }

    public void Release(PageBuffer buffer) => _pool.Buffers.Return(buffer);

    /// <summary>Waits for every queued write; rethrows a writer failure.</summary>
    public void Complete()
    {
        _pool.LetWritersGo();
        _work.CompleteAdding();
        _writer.Join();
        ThrowIfFailed();
    }

    public void Dispose()
    {
        _pool.LetWritersGo();
        if (!_work.IsAddingCompleted)
            _work.CompleteAdding();
        _writer.Join();
        _work.Dispose();
    }

    private void WriteLoop()
    {
        _pool.WaitForWriters();
        foreach (var chunk in _work.GetConsumingEnumerable())
        {
            try
            {
                var expanded = new List<Item>();
                foreach (var item in _failure is null ? chunk.Items : [])
                {
                    if (!item.Copy)
                    {
                        Note(chunk, item);
                        continue;
                    }
                    expanded.Clear();
                    _expand(chunk.Buffer!, item, expanded);
                    foreach (var part in expanded)
                        Note(chunk, part);
                }
            }
            catch (Exception e)
            {
                _failure = ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                if (chunk.Buffer is not null)
                    _pool.Buffers.Return(chunk.Buffer);
                _pool.ReturnList(chunk.Items);
            }
        }
    }

    private void Note(Chunk chunk, Item item)
    {
        if (item.Reference is { } kept)
            _recorded.Add(new Record(kept, 0, 0));
        else if (item.KeptEnd != 0)
            _recorded.Add(new Record(null, item.Address, item.KeptEnd));
        else
        {
            var data = chunk.Buffer!.Span.Slice(item.Offset, item.Length);
            ulong count = (ulong)(item.Length / ImageFormat.PageSize);
            var run = new PageRun { Address = item.Address, Count = count, PageXxh3 = { item.PageXxh3! } };
            _pages.Store(_codec, data).Describe(run, 0);
            _recorded.Add(new Record(run, 0, 0));
            PagesWritten += (long)count;
        }
    }

    private void ThrowIfFailed() => _failure?.Throw();

    /// <summary>
    /// One thing to record: pages of the buffer to store (or first to expand), a run kept elsewhere,
    /// or the pages [Address, KeptEnd) kept wherever the earlier checkpoint kept them.
    /// </summary>
    public readonly record struct Item(ulong Address, int Offset, int Length, ulong[]? PageXxh3, PageRun? Reference, ulong KeptEnd, bool Copy, bool Anonymous)
    {
        public static Item Stored(ulong address, int offset, int length, ulong[] pageXxh3) => new(address, offset, length, pageXxh3, null, 0, false, false);

        public static Item Kept(PageRun run) => new(run.Address, 0, 0, null, run, 0, false, false);

        public static Item KeptAsBefore(ulong start, ulong end) => new(start, 0, 0, null, null, end, false, false);

        /// <summary>Pages copied into the buffer, to be expanded (zero pages, checksums, the earlier copies) by the writer.</summary>
        public static Item Copied(ulong address, int offset, int length, bool anonymous) => new(address, offset, length, null, null, 0, true, anonymous);
    }

    /// <summary>A run of the image, or the range [KeptStart, KeptEnd) kept as the earlier checkpoint kept it.</summary>
    public readonly record struct Record(PageRun? Run, ulong KeptStart, ulong KeptEnd);

    private readonly record struct Chunk(PageBuffer? Buffer, List<Item> Items);
}
