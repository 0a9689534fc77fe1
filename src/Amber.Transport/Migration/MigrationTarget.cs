using System.Globalization;
using Amber.Checkpoint;
using Amber.Coordinator.Control;
using Amber.Coordinator.Daemon;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Store;
using Amber.Image;
using Amber.Transport.Peers;
using Microsoft.Extensions.Logging;

namespace Amber.Transport.Migration;

/// <summary>
/// The receiving end of a migration, on the destination's agent: the group is made here with no
/// process, its checkpoints arrive (each checked and signed by this host), then it is restored with
/// every process held until the source says it has ended its copy ("commit"), and only then released.
/// Anything that fails before that commit — the link, the source, a restore step — removes everything
/// the session made: the group, its checkpoints, its processes. After the commit the group is this
/// node's whatever happens: if it cannot run, it stays here stopped, with its checkpoint.
/// The restore is lazy (<c>amber restore --lazy</c>): every page is here already, and the group runs
/// ("released") before they are all placed, which is most of what a restore of a big group costs;
/// "running" follows once they are, and the checkpoints received are durable (their fsyncs start at
/// the release: the source deletes its own only after "running").
/// <para>
/// Post-copy, the checkpoints come without their page data, which the source sends on a second
/// connection (<see cref="PageLinks"/>, <see cref="PageReceiver"/>) while the group is restored and
/// runs here: every read of a page not in yet waits for it. "running" follows once every page file is
/// whole and checked. If the pages stop coming, the group cannot run on here: it is killed, and
/// forgotten with its checkpoints, which have holes (the source keeps the whole ones).
/// </para>
/// <para>
/// A part of a group across nodes is released also when the link ends after "prepared" if the
/// catalog places it here (<paramref name="placedHere"/>, <see cref="Cluster.MovePlacement"/>): the
/// source ended its copy and confirmed the move there before it could say so.
/// </para>
/// </summary>
internal sealed class MigrationTarget(NodeServices services, PeerLink link, string node, ILogger logger, PageLinks pageLinks, TimeSpan peerTimeout, Action? arrived = null,
    Func<GroupConfig, string, string, bool>? placedHere = null, Func<GroupConfig, string, string?>? partName = null)
{
    /// <summary>How long the source may take to say commit or abort once the group is ready here.</summary>
    private static readonly TimeSpan CommitWait = TimeSpan.FromSeconds(30);

    private readonly List<IncomingPageFile> _incoming = [];
    // The checkpoints received are committed from the page cache, so that the stream never waits for
    // the disk, and made durable only once the group is released here: fsyncs meanwhile would have
    // the disk write back a GiB of the first round while the source writes the next (a round 2-3
    // times as long, and so a last round as much bigger), and compete with the hand-over. Until they
    // are durable the group has not arrived: the source keeps its own checkpoints until it hears
    // "running" (said after), and a coordinator that starts again forgets these (GroupConfig.Arriving).
    private readonly List<(string Directory, string[] DataToCome)> _received = [];
    private Task? _durable;
    private readonly Lock _durableStart = new();
    private PageLinks.Slot? _pageSlot;
    private bool _lost;
    private bool _inStream;
    private GroupConfig? _moving;
    private string _sentAs = "";

    // The restore is started as the session begins: its worker is ready before the last round (the
    // runtime started, its memory faulted in: ~40 ms of the downtime otherwise), waiting to be told
    // which checkpoint to restore. One that failed before it was told, or that expects page data
    // later when none is to come (or the other way round), is not used: a restore started then takes
    // its place.
    private Thread? _ahead;
    private bool _aheadPagesLater, _aheadTold;
    private readonly TaskCompletionSource<(StoredCheckpoint Checkpoint, IPageArrivals? Pages)?> _toRestore = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private ControlResponse? _restoredAhead;
    private bool _committed, _pagesComing;

    /// <summary>The session, from the source's "begin" on; returns when it is over, whichever way.</summary>
    public void Serve(PeerMessage begin)
    {
        if (begin.Group is not { } sent)
        {
            link.Send(PeerMessage.Failure("a migration must say which group it moves"));
            return;
        }
        // A part of a group across nodes whose name is another part's of that group here: a part of it
        // under a name of its own (partName), as a part restored from a lost node's copy is.
        _sentAs = sent.Name;
        if (partName?.Invoke(sent, link.Peer) is { } local)
        {
            sent.PartOf = sent.Name;
            sent.Name = local;
        }
        var group = services.Receive(sent, begin.Key, out string? problem);
        if (group is null)
        {
            link.Send(PeerMessage.Failure($"group {sent.Name} cannot come to node {node}: {problem}"));
            return;
        }
        _moving = group.Config;
        bool committed = false;
        string restoring = "";
        try
        {
            services.WhileBusy(group, () =>
            {
                var ok = PeerMessage.Of(Ops.Ok);
                ok.Name = group.Config.Name;
                if (begin.Probe.Length > 0)
                {
                    string? notShared = SharedStorage.Check(group.Config, begin.Probe);
                    ok.Shared = notShared is null;
                    ok.Warnings = notShared is null ? [] : [notShared];
                }
                link.Send(ok);
                // A stop-and-copy restores as soon as its one checkpoint is in: nothing to be ready ahead of.
                if (begin.Mode is MigrateRequest.PreCopy or MigrateRequest.PostCopy)
                    StartAhead(group, pagesLater: begin.Mode == MigrateRequest.PostCopy);
                while (true)
                {
                    var message = link.Receive();
                    switch (message.Op)
                    {
                        case Ops.Checkpoints:
                            link.Send(Receive(group));
                            break;
                        case Ops.Restore:
                            restoring = message.Checkpoints.FirstOrDefault() ?? "";
                            (var answer, committed) = Restore(group, restoring);
                            link.Send(answer);
                            if (answer.Op == Ops.Running)
                                HoldStorage(group, restoring);
                            return true;
                        case Ops.Busy:
                            break;
                        case Ops.Abort:
                            throw new IOException($"the source aborted it: {message.Error}");
                        default:
                            throw new IOException($"node {link.Peer} sent '{message.Op}' in the middle of a migration");
                    }
                }
            });
        }
        catch (Exception e)
        {
            StopAhead(); // its worker gone before anything of the group is
            // Whatever failed, a group that was not committed must not stay half here.
            if (committed)
            {
                logger.MigrationInFailedAfterCommit(group.Config.Name, link.Peer, restoring, e.Message);
                return;
            }
            Abandon(group, e.Message);
            TrySend(PeerMessage.Failure(e.Message));
            // Given up in the middle of an image stream (a full disk): the source writes on until the
            // stream's end, and only then reads the why.
            if (_inStream)
                link.Drain(TimeSpan.FromSeconds(2), TimeSpan.FromMinutes(2));
            return;
        }
        finally
        {
            StopAhead();
            if (_pageSlot is not null)
                pageLinks.Forget(group.Config.Name, _pageSlot);
        }
        if (!committed)
            Abandon(group, "its restore failed");
        else if (_lost)
            Abandon(group, "its memory could not all come from the source (post-copy): it was ended, and its checkpoints here have holes");
    }

    /// <summary>An image stream into the group's store; its checkpoints become this host's (signed by its key).</summary>
    private PeerMessage Receive(GroupRuntime group)
    {
        _inStream = true;
        var reader = CheckpointStreamReader.Begin(link.Stream, group.Store.Directory, sign: true, durable: false);
        var received = new List<string>();
        while (reader.Next() is { } checkpoint)
        {
            received.Add(checkpoint.Name);
            _incoming.AddRange(checkpoint.PagesToCome);
            _received.Add((checkpoint.Directory, [.. checkpoint.PagesToCome.Select(f => f.Entry.Name)]));
        }
        _inStream = false;
        // Their page data comes on a second connection, which the source opens next.
        if (_incoming.Count > 0)
            _pageSlot ??= pageLinks.Expect(group.Config.Name, link.Peer);
        return new PeerMessage { Op = Ops.Ok, Checkpoints = received, Bytes = reader.BytesRead };
    }

    /// <summary>The group restored from <paramref name="id"/>, released only on the source's commit; the answer, and whether it was committed.</summary>
    private (PeerMessage Answer, bool Committed) Restore(GroupRuntime group, string id)
    {
        var checkpoint = group.Store.Find(id);
        if (checkpoint is null)
            return (PeerMessage.Failure($"checkpoint {id} of group {group.Config.Name} did not arrive"), false);
        if (_pageSlot is null)
            return Restore(group, checkpoint, id, null);
        if (_pageSlot.Take(peerTimeout) is not { } pagesLink)
            return (PeerMessage.Failure($"node {link.Peer} did not open the link for the pages of group {group.Config.Name}"), false);
        using var pages = new PageReceiver(pagesLink, _incoming);
        pages.Start();
        var (answer, committed) = Restore(group, checkpoint, id, pages);
        if (!committed || answer.Op != Ops.Running)
        {
            // Made and released, then its memory did not all come: killed by its pager, nothing of it to keep.
            _lost = committed;
            return (answer, committed);
        }
        try
        {
            // Its memory is all in; its checkpoints here are whole once the pages it never needed are too.
            pages.Completion.GetAwaiter().GetResult();
            if (Arrive(group, id) is { } notDurable)
                answer.Warnings.Add(notDurable);
        }
        catch (Exception e) when (e is IOException or ImageFormatException)
        {
            // It runs with all its memory: it stays. Checkpoints with holes do not.
            Settle();
            string why = $"the checkpoints that brought group {group.Config.Name} did not all arrive ({e.Message}): deleted here, the next checkpoint is a full one";
            DropCheckpoints(group, id, why);
            NodeServices.Arrived(group); // it runs here with all its memory
            answer.Warnings.Add(why);
        }
        return (answer, true);
    }

    /// <summary>The restore itself, its page reads waiting for <paramref name="pages"/> if they are still arriving.</summary>
    private (PeerMessage Answer, bool Committed) Restore(GroupRuntime group, StoredCheckpoint checkpoint, string id, PageReceiver? pages)
    {
        _pagesComing = pages is not null;
        ControlResponse? response = null;
        if (_ahead is not null && _aheadPagesLater == _pagesComing)
        {
            _toRestore.TrySetResult((checkpoint, pages));
            _ahead.Join();
            _ahead = null;
            response = _aheadTold ? _restoredAhead : null;
            if (response is null)
                logger.RestoreAheadReplaced(group.Config.Name, _restoredAhead?.Error ?? "it ended", id);
        }
        else if (_ahead is not null)
        {
            logger.RestoreAheadReplaced(group.Config.Name, _aheadPagesLater ? "it expects page data later, and all of it is here" : "it expects all page data here, and some comes later", id);
        }
        StopAhead();
        response ??= services.Restore(group, checkpoint, Decide, released: Released, lazy: true, pagesFrom: pages);
        // Committed, every page here: this node's once durable (kept stopped with its checkpoint if it did not come up).
        string? notDurable = _committed && !_pagesComing ? Arrive(group, id) : null;
        if (!response.Ok)
        {
            if (_committed)
                logger.MigrationInFailedAfterCommit(group.Config.Name, link.Peer, id, response.Error);
            return (PeerMessage.Failure($"the restore of group {group.Config.Name} on node {node} failed: {response.Error}"), _committed);
        }
        var roots = group.Config.Roots;
        logger.MigratedIn(group.Config.Name, link.Peer, string.Join(' ', roots.Select(r => r.ToString(CultureInfo.InvariantCulture))));
        arrived?.Invoke();
        var running = new PeerMessage
        {
            Op = Ops.Running, Roots = [.. roots], Warnings = [.. response.Stderr.Where(l => l.StartsWith("warning: ", StringComparison.Ordinal))],
        };
        if (notDurable is not null)
            running.Warnings.Add(notDurable);
        return (running, true);
    }

    /// <summary>The group released here: the source hears it (the end of the downtime), and the checkpoints it came with are made durable from now on.</summary>
    private void Released()
    {
        TrySend(PeerMessage.Of(Ops.Released));
        Durable();
    }

    /// <summary>The fsyncs of every checkpoint received, started once.</summary>
    private Task Durable()
    {
        lock (_durableStart)
        {
            return _durable ??= Task.Run(() =>
            {
                Faults.Check(FaultPoint.ReceivedDurable);
                foreach (var (directory, dataToCome) in _received)
                    CheckpointStore.MakeDurable(directory, dataToCome);
            });
        }
    }

    /// <summary>Waits for the fsyncs if they were started, whatever they come to (the checkpoints are deleted next).</summary>
    private void Settle()
    {
        try
        {
            _durable?.GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is ImageStoreException or CheckpointException)
        {
            // Deleted anyway.
        }
    }

    /// <summary>
    /// The group is this node's once the checkpoints it came with are durable: made so (already under
    /// way since its release), then it has arrived. Checkpoints that cannot be made durable are deleted,
    /// so that none is trusted after a crash, and the group's next checkpoint is a full one; returns that
    /// warning, or null.
    /// </summary>
    private string? Arrive(GroupRuntime group, string id)
    {
        string? why = null;
        try
        {
            Durable().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is ImageStoreException or CheckpointException)
        {
            why = $"the checkpoints that brought group {group.Config.Name} could not be made durable on node {node} ({e.Message}): deleted here, the next checkpoint is a full one";
            DropCheckpoints(group, id, why);
        }
        NodeServices.Arrived(group);
        return why;
    }

    /// <summary>Every checkpoint of a group that came but stays (it runs, or is kept stopped) deleted, and why logged.</summary>
    private void DropCheckpoints(GroupRuntime group, string id, string why)
    {
        logger.MigrationInFailedAfterCommit(group.Config.Name, link.Peer, id, why);
        foreach (var entry in group.Store.Scan().Entries)
            CheckpointStore.Delete(entry.Path);
        group.Config.LastCheckpoint = "";
    }

    /// <summary>Every process is made and held: whether they are released (null), said by the source once it has ended its copy; on the restore's hand-over thread.</summary>
    private string? Decide()
    {
        // The source may end its copy now (it keeps its checkpoints until it hears "running"), and says so.
        link.Send(PeerMessage.Of(Ops.Prepared));
        link.WaitAtMost(CommitWait);
        PeerMessage decision;
        try
        {
            decision = link.Receive();
        }
        catch (IOException e) when (_moving is not null && placedHere?.Invoke(_moving, link.Peer, _sentAs) == true)
        {
            logger.MigrationInPlacedWithoutWord(_moving.Name, link.Peer, e.Message);
            decision = PeerMessage.Of(Ops.Commit);
        }
        _committed = decision.Op == Ops.Commit;
        return _committed ? null : $"the source did not commit ({decision.Op}{(decision.Error.Length > 0 ? $": {decision.Error}" : "")})";
    }

    /// <summary>The restore's worker started as the session begins, for the checkpoint that comes last (its page data later: a post-copy's).</summary>
    private void StartAhead(GroupRuntime group, bool pagesLater)
    {
        _aheadPagesLater = pagesLater;
        _ahead = new Thread(() =>
        {
            try
            {
                _restoredAhead = services.RestoreAhead(group, () =>
                {
                    var next = _toRestore.Task.GetAwaiter().GetResult();
                    _aheadTold = next is not null;
                    return next;
                }, Decide, released: Released, pagesLater: _aheadPagesLater);
            }
            catch (Exception e)
            {
                _restoredAhead = ControlResponse.Failure(e.Message);
            }
        })
        { IsBackground = true, Name = "amberd-restore-ahead" };
        _ahead.Start();
    }

    /// <summary>A restore started ahead that is not used: told there is nothing to restore, and waited for (its worker ends).</summary>
    private void StopAhead()
    {
        _toRestore.TrySetResult(null);
        _ahead?.Join();
        _ahead = null;
    }

    /// <summary>
    /// A group with storage that came without it (left in place, shared) is checkpointed here at once,
    /// its storage with it: until then none of its checkpoints here holds the files at the same cut as
    /// the memory, and none can bring it back as it was (<see cref="GroupStore.LatestWhole"/>). A
    /// failure is the checkpoint's own, logged as any; the next scheduled one tries again.
    /// </summary>
    private void HoldStorage(GroupRuntime group, string arrived)
    {
        if (group.Config.Storage.Count == 0 || group.Store.Find(arrived) is not { Storage: false })
            return;
        services.Checkpoint(group, full: false);
    }

    private void Abandon(GroupRuntime group, string why)
    {
        Settle(); // no fsync of a file being deleted
        // Said once it is done: whoever reads the log then finds nothing of the group here.
        var problems = services.Forget(group);
        logger.MigrationInAbandoned(group.Config.Name, link.Peer, why);
        foreach (string problem in problems)
            logger.MigrationInAbandoned(group.Config.Name, link.Peer, problem);
    }

    private void TrySend(PeerMessage message)
    {
        try
        {
            link.Send(message);
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The link is what failed: the source learns it from the link.
        }
    }
}
