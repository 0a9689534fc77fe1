using System.Collections.Concurrent;
using Amber.Transport.Peers;

namespace Amber.Transport.Migration;

/// <summary>
/// Post-copy migrations coming to this node that wait for their page link: the second connection
/// the source opens once it has sent the checkpoints without their page data. A link is taken only
/// for a group that expects one, and only from the node that is moving it here.
/// </summary>
internal sealed class PageLinks
{
    private readonly ConcurrentDictionary<string, Slot> _slots = new(StringComparer.Ordinal);

    /// <summary>Group <paramref name="group"/>'s migration from node <paramref name="peer"/> waits for its page link.</summary>
    public Slot Expect(string group, string peer)
    {
        var slot = new Slot(peer);
        _slots[group] = slot;
        return slot;
    }

    /// <summary>The migration is over: a link that comes now is refused.</summary>
    public void Forget(string group, Slot slot)
    {
        _slots.TryRemove(KeyValuePair.Create(group, slot));
        slot.Release();
    }

    /// <summary>
    /// A page link for <paramref name="group"/> (on the agent's thread for that connection): answered
    /// and handed over, and held open until the migration is over. False if nothing here expects it.
    /// </summary>
    public bool Serve(string group, PeerLink link)
    {
        if (!_slots.TryGetValue(group, out var slot) || slot.Peer != link.Peer)
            return false;
        link.Send(PeerMessage.Of(Ops.Ok));
        if (!slot.Attach(link))
            return false;
        slot.Released.Wait();
        return true;
    }

    /// <summary>One migration's wait for its page link.</summary>
    internal sealed class Slot(string peer)
    {
        private readonly TaskCompletionSource<PeerLink> _link = new(TaskCreationOptions.RunContinuationsAsynchronously);
        private readonly TaskCompletionSource _released = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public string Peer { get; } = peer;

        public Task Released => _released.Task;

        public bool Attach(PeerLink link) => _link.TrySetResult(link);

        /// <summary>The link, once the source has opened it; null if it has not within <paramref name="wait"/>.</summary>
        public PeerLink? Take(TimeSpan wait)
        {
            try
            {
                return _link.Task.Wait(wait) ? _link.Task.Result : null;
            }
            catch (AggregateException)
            {
                return null; // released meanwhile
            }
        }

        public void Release()
        {
            _link.TrySetCanceled();
            _released.TrySetResult();
        }
    }
}
