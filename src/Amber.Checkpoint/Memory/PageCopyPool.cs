using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Amber.Image;
using Amber.Kernel.Memory;

namespace Amber.Checkpoint.Memory;

/// <summary>
/// What copying pages out of stopped processes needs, made before the freeze: the page buffers
/// (<see cref="PageBufferPool"/>), the lists that say what each holds, and the list of ranges one
/// process_vm_readv reads — all with their memory touched already, because memory first touched
/// under the freeze costs a page fault each 4 KiB, slow on these VMs (KERNEL.md §3; hundreds of
/// faults, several milliseconds, for a 1 % incremental checkpoint of 2 GiB). The page writers of
/// every process of a checkpoint share it; processes are copied one after the other.
/// </summary>
public sealed class PageCopyPool : IDisposable
{
    /// <summary>The most items a list holds before it is handed to the writer.</summary>
    public const int ListCapacity = 4096;

    private readonly ConcurrentBag<List<PageWriterQueue.Item>> _lists = [];

    public PageCopyPool(int buffers, int bufferSize)
    {
        Buffers = new PageBufferPool(buffers, bufferSize);
        // A list per buffer in flight, and a few for chunks of kept runs only.
        for (int i = 0; i < buffers + 4; i++)
            _lists.Add(Touched(new List<PageWriterQueue.Item>(ListCapacity)));
        Reads = Touched(new List<(ulong Address, int Length)>(RemoteMemory.MaxScattered));
    }

    public PageBufferPool Buffers { get; }

    /// <summary>The ranges the next process_vm_readv reads (one copy at a time: the tracer thread's).</summary>
    public List<(ulong Address, int Length)> Reads { get; }

    /// <summary>An empty list (a new one if all are out: correct, only slower).</summary>
    public List<PageWriterQueue.Item> RentList() => _lists.TryTake(out var list) ? list : new List<PageWriterQueue.Item>(ListCapacity);

    public void ReturnList(List<PageWriterQueue.Item> list)
    {
        list.Clear();
        _lists.Add(list);
    }

    public void Dispose() => Buffers.Dispose();

    /// <summary>The list's storage written once, so that its pages are faulted in now.</summary>
    private static List<T> Touched<T>(List<T> list)
    {
        CollectionsMarshal.SetCount(list, list.Capacity);
        CollectionsMarshal.AsSpan(list).Clear();
        list.Clear();
        return list;
    }
}
