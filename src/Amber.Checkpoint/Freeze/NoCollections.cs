using System.Runtime;
using System.Runtime.CompilerServices;

namespace Amber.Checkpoint.Freeze;

/// <summary>
/// No garbage collection while the processes are frozen: a collection stops amber's threads for
/// milliseconds (tens, measured, when the page buffers of a large checkpoint were just allocated),
/// and every one of them would be added to the freeze. Asks the runtime for a region with room for
/// <c>bytes</c> of allocations; a checkpoint that allocates more than that is collected as usual.
/// </summary>
public sealed class NoCollections : IDisposable
{
    private bool _active;

    private NoCollections(bool active) => _active = active;

    public static NoCollections Begin(long bytes)
    {
        try
        {
            return new NoCollections(GC.TryStartNoGCRegion(bytes));
        }
        catch (Exception e) when (e is ArgumentOutOfRangeException or InvalidOperationException)
        {
            return new NoCollections(false); // more than the runtime can promise, or a region already open
        }
    }

    // The region is laid out over more than it promises: touching just its size leaves part of it fresh.
    private const long TouchMargin = 8L << 20;
    private const int TouchPiece = 64 * 1024; // below the large object heap's threshold: the small object heap is what the region uses

    /// <summary>
    /// Faults in the room of a region of <paramref name="bytes"/> (<see cref="Begin"/>), while the
    /// processes still run: memory touched for the first time costs a page fault every 4 KiB, ~10 µs
    /// each on these VMs (docs/kernel.md §13), which made composing and writing a hand-over's image
    /// (tens of thousands of page runs) about twice as slow under the freeze as in memory touched
    /// before. Allocated and collected again, the memory stays the runtime's, and the region's
    /// allocations reuse it. Costs ~3 ms per MiB.
    /// </summary>
    public static void Touch(long bytes)
    {
        Allocate(bytes + TouchMargin);
        GC.Collect();
    }

    [MethodImpl(MethodImplOptions.NoInlining)] // its pieces unreachable once it returns
    private static void Allocate(long bytes)
    {
        var pieces = new byte[(int)(bytes / TouchPiece)][];
        for (int i = 0; i < pieces.Length; i++)
            pieces[i] = new byte[TouchPiece]; // zeroed by the runtime: every page of it touched
        GC.KeepAlive(pieces);
    }

    public void Dispose()
    {
        if (!_active)
            return;
        _active = false;
        // The region ends by itself once its room is used up (a collection happened after all).
        if (GCSettings.LatencyMode == GCLatencyMode.NoGCRegion)
            GC.EndNoGCRegion();
    }
}
