using System.Collections.Concurrent;
using System.IO.Hashing;
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
    /// Queues the stretches of <paramref name="buffer"/> to store, as (address, offset in buffer,
    /// length). Their checksums are taken here, on the caller's thread, in parallel with the writes.
    /// </summary>
    public void Submit(PageBuffer buffer, List<(ulong Address, int Offset, int Length)> stretches)
    {
        ThrowIfFailed();
        var hashes = new ulong[stretches.Count];
        for (int i = 0; i < hashes.Length; i++)
            hashes[i] = XxHash3.HashToUInt64(buffer.Span.Slice(stretches[i].Offset, stretches[i].Length));
        _work.Add(new Chunk(buffer, stretches, hashes));
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
                if (_failure is null)
                {
                    for (int i = 0; i < chunk.Stretches.Count; i++)
                    {
                        var (address, offset, length) = chunk.Stretches[i];
                        ulong xxh3 = chunk.Hashes[i];
                        ulong fileOffset = _pages.AppendData(chunk.Buffer.Span.Slice(offset, length));
                        ulong count = (ulong)(length / ImageFormat.PageSize);
                        _mm.Pages.Add(new PageRun { Address = address, Count = count, FileOffset = fileOffset, Xxh3 = xxh3 });
                        PagesWritten += (long)count;
                    }
                }
            }
            catch (Exception e)
            {
                _failure = ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                _free.Add(chunk.Buffer);
            }
        }
    }

    private void ThrowIfFailed() => _failure?.Throw();

    private readonly record struct Chunk(PageBuffer Buffer, List<(ulong Address, int Offset, int Length)> Stretches, ulong[] Hashes);
}
