using System.Net;
using Amber.Coordinator.Daemon;
using Amber.Coordinator.Groups;
using Amber.Transport.Peers;
using Microsoft.Extensions.Logging;

namespace Amber.Transport.Cluster;

/// <summary>
/// What keeps a part of a group across nodes from running twice when its node is cut off from the
/// cluster's store while it lives (the others then take its lease for lost, and the group's leader
/// restores its parts elsewhere: <see cref="GroupRecovery"/>):
/// <list type="bullet">
/// <item>Cut off for half its lease's TTL (a renewal missed: it renews every third), the node asks the other nodes whether they reach
/// the store: if one does (this node alone is cut off), or none answers (this node is cut off from
/// everyone), its parts of groups across nodes are frozen, and held (no operation on them) until it
/// is live in the store again. If the others answer and none reaches the store, the store is away for
/// all: nothing is restored anywhere, and the groups run on.</item>
/// <item>Live in the store again, a part frozen runs on, unless its parts were taken over meanwhile
/// (<see cref="GroupCatalog.TakenKey"/>, claimed by the leader in the same transaction that finds the
/// node not live): then it is ended, its connections unplugged first.</item>
/// <item>Registered under a new lease (the agent started, or its lease ran out), the node ends what
/// still runs of its parts that were taken over, and deletes the keys that said so.</item>
/// </list>
/// </summary>
internal sealed class NodeFence(NodeServices services, NodeIdentity identity, Func<NodeRegistration?> registration, StoreView view, EtcdClient store, ILogger logger) : IDisposable
{
    private static readonly TimeSpan Poll = TimeSpan.FromMilliseconds(250);
    private readonly CancellationTokenSource _stop = new();
    private Thread? _thread;
    private readonly Lock _lock = new();
    private readonly List<(GroupRuntime Group, bool Held)> _fenced = [];
    private bool _saidAllAway;

    /// <summary>Whether <paramref name="group"/> is this node's part of a group across nodes.</summary>
    private bool IsPart(GroupRuntime group) => group.Config.PartOf.Length > 0 || view.IsAcross(group.Config.Name);

    /// <summary>The node's parts of groups across nodes that run here now.</summary>
    private List<GroupRuntime> Parts() => [.. services.Groups().Where(g => IsPart(g) && g.LiveProcesses().Count > 0)];

    /// <summary>Runs <paramref name="work"/>, an exception logged (on a thread of the agent's, it would end the agent).</summary>
    private void Guarded(string what, Action work)
    {
        try
        {
            work();
        }
        catch (Exception e)
        {
            logger.WatchFailed(what, e.ToString().ReplaceLineEndings(" | "));
        }
    }

    /// <summary>Watches the node's renewals, on a thread of its own (not the store's calls, which wait as long as their timeout when it is away).</summary>
    public void Start()
    {
        _thread = new Thread(() =>
        {
            while (!_stop.Token.WaitHandle.WaitOne(Poll))
                Guarded("the fence", CutOff);
        })
        { IsBackground = true, Name = "amber-fence" };
        _thread.Start();
    }

    /// <summary>
    /// The parts frozen if the node has not renewed its lease for half its TTL, unless the store is
    /// away for all; decided before the lease can run out (the others ask for at most a sixth of it).
    /// </summary>
    private void CutOff()
    {
        if (registration() is not { Lease: not 0 } registered || DateTime.UtcNow - registered.LastRenewed < registered.Ttl / 2)
            return;
        lock (_lock)
        {
            if (_fenced.Count > 0)
            {
                KeepHeld();
                return;
            }
            if (Parts() is not { Count: > 0 } parts)
                return;
            // Asked at every poll until one has renewed since this node's renewals began to fail (they
            // renew every third of the TTL: by two thirds of it after this node's last, each that can has).
            var failing = registered.FailingSince ?? registered.LastRenewed;
            string? reaches = OtherThatReachesTheStore(registered.Ttl / 6 < TimeSpan.FromSeconds(1) ? registered.Ttl / 6 : TimeSpan.FromSeconds(1), failing);
            if (reaches is null)
            {
                if (!_saidAllAway && DateTime.UtcNow - registered.LastRenewed >= registered.Ttl * 5 / 6)
                {
                    logger.StoreAwayForAll(string.Join(", ", parts.Select(g => g.Config.Name)));
                    _saidAllAway = true;
                }
                return;
            }
            foreach (var group in parts)
            {
                bool held = group.Busy.Wait(TimeSpan.FromMilliseconds(500)); // frozen whether or not: the lease does not wait
                try
                {
                    group.Cgroup.Freeze(TimeSpan.FromSeconds(5));
                    _fenced.Add((group, held));
                    // Silent too: a frozen process's connections still answer and retransmit, which must not
                    // reach the peers of the copy restored elsewhere (the same address) once the node is back.
                    if (group.Config.Net.Length > 0 && group.LiveProcesses() is [int member, ..] && GroupNetwork.SetLink(group.Config, member, up: false) is { } down)
                        logger.FenceFailed(group.Config.Name, $"its interface could not be taken down: {down}");
                }
                catch (IOException e)
                {
                    logger.FenceFailed(group.Config.Name, e.Message);
                    if (held)
                        group.Busy.Release();
                }
            }
            logger.Fenced(string.Join(", ", _fenced.Select(f => f.Group.Config.Name)), reaches.Length > 0 ? $"node {reaches} reaches it" : "no other node answers either");
        }
    }

    /// <summary>
    /// The parts held stay so: one whose Busy an operation had when it was frozen gets it once that
    /// operation ends — which may have thawed it (a checkpoint lets its processes go): frozen again.
    /// </summary>
    private void KeepHeld()
    {
        for (int i = 0; i < _fenced.Count; i++)
        {
            var (group, held) = _fenced[i];
            if (held || !group.Busy.Wait(0))
                continue;
            _fenced[i] = (group, true);
            try
            {
                if (group.LiveProcesses().Count > 0 && !group.Cgroup.Frozen)
                    group.Cgroup.Freeze(TimeSpan.FromSeconds(5));
            }
            catch (IOException e)
            {
                logger.FenceFailed(group.Config.Name, e.Message);
            }
        }
    }

    /// <summary>The store answered, the node live in it: the frozen parts run on, or are ended if they were taken over.</summary>
    public void Lift() => Guarded("lifting the fence", () =>
    {
        lock (_lock)
        {
            _saidAllAway = false;
            foreach (var (group, held) in _fenced)
            {
                try
                {
                    if (Taken(group) is { } entry)
                    {
                        EndTaken(group, entry);
                        store.Delete(GroupCatalog.TakenKey(group.Config.Across, identity.Name));
                    }
                    else
                    {
                        if (group.Config.Net.Length > 0 && group.LiveProcesses() is [int member, ..] && GroupNetwork.SetLink(group.Config, member, up: true) is { } up)
                            logger.FenceFailed(group.Config.Name, $"its interface could not be brought up again: {up}");
                        group.Cgroup.Thaw();
                    }
                }
                catch (EtcdException)
                {
                    return; // away again: the next answer lifts it
                }
                if (held)
                    group.Busy.Release();
                logger.FenceLifted(group.Config.Name);
            }
            _fenced.Clear();
        }
    });

    /// <summary>The node registered under a new lease: what still runs of its parts taken over meanwhile ended, and the keys that said so deleted.</summary>
    public void Registered() => Guarded("ending the parts taken over", () =>
    {
        lock (_lock)
        {
            if (_fenced.Count > 0)
                return; // Lift, right after, decides for them
            try
            {
                foreach (var group in services.Groups().Where(IsPart))
                {
                    if (Taken(group) is not { } entry)
                        continue;
                    if (group.LiveProcesses().Count > 0)
                        services.WhileBusy(group, () => EndTaken(group, entry));
                    store.Delete(GroupCatalog.TakenKey(group.Config.Across, identity.Name));
                }
            }
            catch (EtcdException)
            {
                // away again: the next registration sees to it
            }
        }
    });

    private string? Taken(GroupRuntime group) => store.Get(GroupCatalog.TakenKey(group.Config.Across, identity.Name))?.Value;

    private bool EndTaken(GroupRuntime group, string entry)
    {
        group.Config.Roots.Clear();
        group.KillAll(unplug: true);
        group.Cgroup.Thaw();
        group.Save();
        logger.TakenOver(group.Config.Name, group.Config.Across, entry);
        return true;
    }

    /// <summary>A node (as last seen live) that renewed its lease after <paramref name="since"/>; "" if none answers; null if some answer and none has.</summary>
    private string? OtherThatReachesTheStore(TimeSpan timeout, DateTime since)
    {
        long after = new DateTimeOffset(since).ToUnixTimeMilliseconds();
        var asks = view.Nodes.Select(node => Task.Run(() =>
        {
            try
            {
                if (!IPEndPoint.TryParse(node.Address, out var address))
                    return (node.Name, Answered: false, Reaches: false);
                using var link = PeerLink.Connect(address, identity, timeout);
                link.Greet();
                link.Send(PeerMessage.Of(Ops.Store));
                return (node.Name, Answered: true, Reaches: link.Expect(Ops.Ok).RenewedAtUnixMs > after);
            }
            catch (IOException)
            {
                return (node.Name, Answered: false, Reaches: false);
            }
        })).ToArray();
        Task.WaitAll(asks, timeout * 1.5);
        var answers = asks.Where(t => t.IsCompletedSuccessfully).Select(t => t.Result).ToList();
        if (answers.FirstOrDefault(a => a.Reaches) is { Name: { } name, Reaches: true })
            return name;
        return answers.Any(a => a.Answered) ? null : "";
    }

    public void Dispose()
    {
        _stop.Cancel();
        _thread?.Join();
        _stop.Dispose();
    }
}
