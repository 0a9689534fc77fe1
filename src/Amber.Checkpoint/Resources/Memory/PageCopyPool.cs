using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using Amber.Image;
using Amber.Kernel.Memory;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// What copying pages out of stopped processes needs, made before the freeze: the page buffers
/// (<see cref="PageBufferPool"/>), the lists that say what each holds, and the list of ranges one
/// process_vm_readv reads — all with their memory touched already, because memory first touched
/// under the freeze costs a page fault each 4 KiB, slow on these VMs (docs/kernel.md §13; hundreds of
/// faults, several milliseconds, for a 1 % incremental checkpoint of 2 GiB). The page writers of
/// every process of a checkpoint share it; processes are copied one after the other. A buffer of
/// many scattered pages is read by two threads, each half of it (<see cref="Read"/>).
/// </summary>
public sealed class PageCopyPool : IDisposable
{
    /// <summary>The most items a list holds before it is handed to the writer.</summary>
    public const int ListCapacity = 4096;

    // Fewer ranges than this are read by one thread (handing half over would cost more than it saves).
    private const int SplitAtLeast = 64;

    private readonly ConcurrentBag<List<PageWriterQueue.Item>> _lists = [];
    private readonly HelperThread _helper = new("amber-page-reader");
    private readonly ManualResetEventSlim _writersGo = new();

    public PageCopyPool(int buffers, int bufferSize)
    {
        Buffers = new PageBufferPool(buffers, bufferSize);
        // A list per buffer in flight, and a few for chunks of kept runs only.
        for (int i = 0; i < buffers + 4; i++)
            _lists.Add(Touched(new List<PageWriterQueue.Item>(ListCapacity)));
        Reads = Touched(new List<(ulong Address, int Length)>(RemoteMemory.MaxScattered));
        _helper.Split(() => { }, () => { }); // its stack faulted in now, not under the freeze
    }

    /// <summary>
    /// Lets the page writers start. Until then they wait, so that copying out of the stopped
    /// processes has both cores while the pool has buffers for every page to copy; the first queue
    /// that completes, or that finds no buffer free, lets them all go.
    /// </summary>
    public void LetWritersGo() => _writersGo.Set();

    /// <summary>What a page writer does before it writes anything.</summary>
    public void WaitForWriters() => _writersGo.Wait();

    /// <summary>
    /// Fills <paramref name="buffer"/> with the remote <paramref name="ranges"/>, one after the other
    /// (the first <paramref name="used"/> bytes): the second half of the ranges read on the helper
    /// thread while this one reads the first — on this VM, 20 MiB of scattered pages in ~4 ms
    /// instead of ~6 ms.
    /// </summary>
    public void Read(RemoteMemory memory, List<(ulong Address, int Length)> ranges, PageBuffer buffer, int used)
    {
        if (ranges.Count < SplitAtLeast)
        {
            memory.ReadScattered(CollectionsMarshal.AsSpan(ranges), buffer.Span[..used]);
            return;
        }
        int half = ranges.Count / 2, split = 0;
        for (int i = 0; i < half; i++)
            split += ranges[i].Length;
        _helper.Split(
            () => memory.ReadScattered(CollectionsMarshal.AsSpan(ranges)[half..], buffer.Span[split..used]),
            () => memory.ReadScattered(CollectionsMarshal.AsSpan(ranges)[..half], buffer.Span[..split]));
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

    public void Dispose()
    {
        _helper.Dispose();
        Buffers.Dispose();
    }

    /// <summary>The list's storage written once, so that its pages are faulted in now.</summary>
    private static List<T> Touched<T>(List<T> list)
    {
        CollectionsMarshal.SetCount(list, list.Capacity);
        CollectionsMarshal.AsSpan(list).Clear();
        list.Clear();
        return list;
    }
}
