using System.Collections.Concurrent;
using Amber.Native;

namespace Amber.Image;

/// <summary>
/// Page buffers of one size, shared by the page writers of a checkpoint, carved out of one pinned
/// block that is faulted in when the pool is made. The first touch of fresh memory costs a fault per
/// page, and faults are slow on these VMs (docs/kernel.md §13): a checkpoint makes its pool before the
/// freeze, large enough for the pages it expects to copy, so that none is paid while the processes
/// are stopped. The block is advised for huge pages, which halves the cost of faulting it in here.
/// <see cref="Rent"/> waits for a buffer to come back when all are out.
/// </summary>
public sealed class PageBufferPool : IDisposable
{
    private const int HugePage = 2 << 20;
    private readonly BlockingCollection<PageBuffer> _free;

    /// <summary><paramref name="count"/> buffers of <paramref name="bufferSize"/> bytes (whole pages), all faulted in now.</summary>
    public PageBufferPool(int count, int bufferSize)
    {
        if (count <= 0 || bufferSize <= 0 || bufferSize % ImageFormat.PageSize != 0 || (long)count * bufferSize > Array.MaxLength - HugePage)
            throw new ArgumentOutOfRangeException(nameof(count), $"{count} buffers of {bufferSize} bytes");
        int length = count * bufferSize;
        var block = GC.AllocateUninitializedArray<byte>(length + HugePage, pinned: true);
        int offset = (int)((HugePage - PageBuffer.AddressOf(block) % HugePage) % HugePage);
        Advise(block, offset, length);
        block.AsSpan(offset, length).Clear();
        _free = new BlockingCollection<PageBuffer>(count);
        for (int i = 0; i < count; i++)
            _free.Add(new PageBuffer(block, offset + i * bufferSize, bufferSize));
        Count = count;
        BufferSize = bufferSize;
    }

    /// <summary>How many buffers the pool has, rented or not.</summary>
    public int Count { get; }

    /// <summary>The size of each buffer, in bytes.</summary>
    public int BufferSize { get; }

    /// <summary>A free buffer, waiting for one to be returned if none is (or until <paramref name="cancel"/> is).</summary>
    /// <exception cref="OperationCanceledException">Cancelled while waiting.</exception>
    public PageBuffer Rent(CancellationToken cancel = default) => _free.Take(cancel);

    /// <summary>A free buffer, if one is.</summary>
    public bool TryRent(out PageBuffer buffer) => _free.TryTake(out buffer!);

    /// <summary>Gives back a buffer rented from this pool, for the next <see cref="Rent"/>.</summary>
    public void Return(PageBuffer buffer) => _free.Add(buffer);

    /// <summary>Ends the pool; the block goes when no buffer of it is referenced any more.</summary>
    public void Dispose() => _free.Dispose();

    /// <summary>Advises the whole 2 MiB pages inside <paramref name="memory"/> for huge pages (best effort).</summary>
    internal static unsafe void AdviseHuge(Span<byte> memory)
    {
        fixed (byte* p = memory)
        {
            nuint start = ((nuint)p + HugePage - 1) / HugePage * HugePage, end = ((nuint)p + (nuint)memory.Length) / HugePage * HugePage;
            if (end > start)
                _ = Interop.Madvise((byte*)start, end - start, Interop.MADV_HUGEPAGE);
        }
    }

    /// <summary>Huge pages where the kernel has them to give; without, the block is faulted in page by page, as any memory.</summary>
    private static unsafe void Advise(byte[] block, int offset, int length)
    {
        fixed (byte* p = &block[offset])
            _ = Interop.Madvise(p, (nuint)length, Interop.MADV_HUGEPAGE);
    }
}
