using System.Runtime;

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
