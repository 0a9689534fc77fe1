using System.Diagnostics;
using System.Globalization;
using System.Net;
using Amber.Checkpoint;
using Amber.Coordinator.Control;
using Amber.Coordinator.Daemon;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Store;
using Amber.Image;
using Amber.Transport.Cluster;
using Amber.Transport.Peers;
using Microsoft.Extensions.Logging;

namespace Amber.Transport.Migration;

/// <summary>One round of a migration: a checkpoint and what it took to send it.</summary>
internal sealed record MigrationRound(string Checkpoint, long Bytes, double CheckpointMs, double SendMs, double FrozenMs);

/// <summary>
/// The sending end of a migration (amber migrate), in the source's coordinator, holding the group's
/// Busy. Pre-copy: checkpoints of the running group, a full one then incremental ones of the pages
/// written since (the write trackers), each streamed to the destination, until the last is small
/// enough to go within the downtime asked for; then the final checkpoint, with the group frozen
/// until the destination has made every process again ("prepared"). Only then does the group end
/// here, and only after that is the destination told to release it ("commit"): at no moment do both
/// copies run. Anything failing before the end here resumes the group here as it was.
/// <para>
/// Post-copy: a full checkpoint here while the group runs (sent nowhere: it is the copy the group
/// can always come back from, and most of its memory), then the final one, frozen, incremental and
/// small; both go to the destination without their page data, which follows on a second connection
/// (<see cref="PageServer"/>) once the group runs there: pages it touches first, the rest pushed. The
/// group ends here at the commit as in pre-copy, but its checkpoints stay until the destination has
/// every page. If the pages stop on the way, the group is lost there (it cannot run without its
/// memory), and is to be restored here from those checkpoints (the report says so).
/// </para>
/// <para>
/// A part of a group across nodes (<paramref name="placement"/>) also takes its part of the group's
/// latest cut there first, and is placed there in the catalog between its end here and the commit
/// (<see cref="MovePlacement"/>).
/// </para>
/// </summary>
internal sealed class MigrationSource(NodeServices services, NodeIdentity identity, ILogger logger, TimeSpan peerTimeout, MovePlacement? placement = null) : IDisposable
{
    private const int MaxRounds = 8;
    /// <summary>A round that sends more than this share of the round before it has stopped converging.</summary>
    private const double Converging = 0.9;
    /// <summary>How long the destination may take to restore the group (its processes made, not yet running).</summary>
    private static readonly TimeSpan RestoreWait = TimeSpan.FromMinutes(2);

    // Post-copy: the second connection, for the page data, and what serves it; the page files whose data is to follow.
    private PeerLink? _pagesLink;
    private PageServer? _pages;
    private readonly List<(string Path, long Size)> _later = [];

    // Shared storage (--shared-storage) that the destination sees as it is here: left in place, not in
    // the migration's checkpoints. Otherwise why it is sent all the same, for a warning.
    private bool _storageShared;
    private string? _storageSent;

    /// <summary>
    /// The group's name on the destination, once it has said so: its own, or NAME.NODE for a part of a
    /// group across nodes that comes to a node that runs another part of that group.
    /// </summary>
    public string ArrivedAs { get; private set; } = "";

    public ControlResponse Migrate(GroupRuntime group, MigrateRequest request, Action<ProgressSample>? progress)
    {
        string name = group.Config.Name;
        if (request.Mode is not (MigrateRequest.PreCopy or MigrateRequest.PostCopy or MigrateRequest.StopAndCopy))
            return ControlResponse.Failure($"--mode {request.Mode}: it is precopy, postcopy or stop");
        if (request.OnNoConvergence is not (MigrateRequest.FinalRoundAnyway or MigrateRequest.Abort))
            return ControlResponse.Failure($"--on-no-convergence {request.OnNoConvergence}: it is stop or abort");
        if (!NodeAddress.TryParse(request.To, out var to))
            return ControlResponse.Failure($"--to {request.To}: it is the destination agent's ADDR:PORT (an IPv6 address in brackets)");
        if (NodeServices.CannotMove(group, withKey: true) is { } cannot)
            return ControlResponse.Failure(cannot);

        var clock = Stopwatch.StartNew();
        PeerLink link;
        try
        {
            link = PeerLink.Connect(to, identity, peerTimeout);
        }
        catch (IOException e)
        {
            return ControlResponse.Failure($"cannot migrate group {name}: {e.Message}");
        }
        using (link)
        {
            var rounds = new List<MigrationRound>();
            var sent = new HashSet<string>(StringComparer.Ordinal);
            try
            {
                if (link.Peer == identity.Name)
                    throw new IOException($"the agent at {request.To} is this node ({identity.Name})");
                link.Greet();
                Begin(group, request, link);
                // A part of a group across nodes: its part of the group's cut first, to be rolled back to there.
                if (placement is not null)
                    Send(group.Store, placement.Cut, link, sent, pagesLater: false);
                if (request.Mode == MigrateRequest.PreCopy)
                    PreCopy(group, request, link, rounds, sent, progress);
                else if (request.Mode == MigrateRequest.PostCopy)
                {
                    using (link.KeepAlive())
                        KeepOneHere(group, rounds, progress);
                    // Its metadata, and the page link, before the freeze: what is left for the downtime
                    // is the final round's metadata.
                    var (bytes, sendMs, later) = Send(group.Store, rounds[0].Checkpoint, link, sent, pagesLater: true);
                    rounds[0] = rounds[0] with { Bytes = bytes, SendMs = sendMs };
                    _later.AddRange(later);
                    OpenPageLink(to, ArrivedAs);
                }
            }
            catch (Exception e) when (e is IOException or ImageFormatException or ImageStoreException or MigrationException)
            {
                TryAbort(link, e.Message);
                logger.MigrationOutFailed(name, link.Peer, e.Message);
                return ControlResponse.Failure($"migration of group {name} to node {link.Peer} failed: {e.Message}; it runs on here");
            }
            return Final(group, request, link, rounds, sent, clock, progress);
        }
    }

    /// <summary>The group's settings sent; with shared storage, the destination asked whether it has the very same directories.</summary>
    private void Begin(GroupRuntime group, MigrateRequest request, PeerLink link)
    {
        string? token = SharedStorage.Mark(group.Config, out string? unmarked);
        PeerMessage ok;
        try
        {
            // An encrypted group's key goes with it: the destination restores its memory anyway.
            link.Send(new PeerMessage { Op = Ops.Begin, Group = group.Config, Mode = request.Mode, Probe = token ?? "", Key = GroupKey.Of(group.Config)?.ToBytes() });
            ok = link.Expect(Ops.Ok);
        }
        finally
        {
            if (token is not null)
                SharedStorage.Unmark(group.Config);
        }
        ArrivedAs = ok.Name.Length > 0 ? ok.Name : group.Config.Name;
        _storageShared = token is not null && ok.Shared;
        if (group.Config.SharedStorage && !_storageShared)
            _storageSent = $"the storage of group {group.Config.Name} is declared shared, but {unmarked ?? $"on node {link.Peer} {string.Join("; ", ok.Warnings)}"}: it is sent";
    }

    /// <summary>Post-copy's first checkpoint: a full one of the running group, kept here (0 bytes sent).</summary>
    private void KeepOneHere(GroupRuntime group, List<MigrationRound> rounds, Action<ProgressSample>? progress)
    {
        progress?.Invoke(new ProgressSample { Phase = "checkpoint kept here" });
        var taken = Stopwatch.StartNew();
        var response = services.Checkpoint(group, full: true, storage: !_storageShared);
        if (!response.Ok)
            throw new MigrationException($"the checkpoint taken before the post-copy failed: {response.Error}");
        rounds.Add(new MigrationRound(response.Stdout[0], 0, taken.Elapsed.TotalMilliseconds, 0, response.Figure("frozenMs")));
    }

    /// <summary>Rounds while the group runs, until the next would fit the downtime asked for, or they stop shrinking.</summary>
    private void PreCopy(GroupRuntime group, MigrateRequest request, PeerLink link, List<MigrationRound> rounds, HashSet<string> sent, Action<ProgressSample>? progress)
    {
        for (int round = 1; round <= MaxRounds; round++)
        {
            progress?.Invoke(new ProgressSample { Phase = $"pre-copy round {round}" });
            var taken = Stopwatch.StartNew();
            ControlResponse response;
            using (link.KeepAlive())
                response = services.Checkpoint(group, full: round == 1, storage: !_storageShared);
            if (!response.Ok)
                throw new MigrationException($"the checkpoint of round {round} failed: {response.Error}");
            double checkpointMs = taken.Elapsed.TotalMilliseconds, frozenMs = response.Figure("frozenMs");
            var (bytes, sendMs, _) = Send(group.Store, response.Stdout[0], link, sent, pagesLater: false);
            rounds.Add(new MigrationRound(response.Stdout[0], bytes, checkpointMs, sendMs, frozenMs));
            // What the last round would take, frozen: a freeze like this one's, and about as long to send.
            double estimate = Math.Max(sendMs, 0.1) + frozenMs;
            if (round > 1 && estimate <= request.MaxDowntimeMs)
                return;
            if (round > 2 && bytes > Converging * rounds[^2].Bytes)
            {
                if (request.OnNoConvergence == MigrateRequest.Abort)
                    throw new MigrationException($"pre-copy does not converge: round {round} sent {Mib(bytes)}, round {round - 1} {Mib(rounds[^2].Bytes)} (the group writes as fast as it is sent); --on-no-convergence abort");
                return;
            }
        }
    }

    /// <summary>The page link of a post-copy, opened once the destination has a checkpoint without its page data (and so expects one).</summary>
    private void OpenPageLink(IPEndPoint to, string group)
    {
        _pagesLink = PeerLink.Connect(to, identity, peerTimeout);
        _pagesLink.Greet();
        _pagesLink.Send(new PeerMessage { Op = Ops.Pages, Name = group });
        _pagesLink.Expect(Ops.Ok);
    }

    /// <summary>The page data of <paramref name="later"/> served on the page link, from now until the destination has it all.</summary>
    private void ServePages(IReadOnlyList<(string Path, long Size)> later)
    {
        // The newest checkpoint's pages first: they are the ones the group has.
        var checkpoints = later.Select(f => Path.GetDirectoryName(f.Path)).Distinct().ToList();
        var order = Enumerable.Range(0, later.Count).OrderByDescending(i => checkpoints.IndexOf(Path.GetDirectoryName(later[i].Path))).ThenBy(i => i).ToList();
        _pages = new PageServer(_pagesLink!, later, order);
        _pages.Start();
    }

    /// <summary>
    /// The last round, the group frozen: sent, restored there and held; ended here, and as soon as every
    /// process here has been sent SIGKILL (none runs again), released there.
    /// </summary>
    private ControlResponse Final(GroupRuntime group, MigrateRequest request, PeerLink link, List<MigrationRound> rounds, HashSet<string> sent, Stopwatch clock,
        Action<ProgressSample>? progress)
    {
        string name = group.Config.Name;
        bool postCopy = request.Mode == MigrateRequest.PostCopy;
        string? failure = null;
        string finalId = "";
        long finalBytes = 0;
        double sendMs = 0;
        long decidedAt = 0, sentAt = 0, pageLinkAt = 0, preparedAt = 0, commitAt = 0, runningAt = 0, memoryInAt = 0;
        bool committed = false;
        string? notPlaced = null;
        PeerMessage? running = null;
        IOException? commitFailure = null;
        bool pagesFailed = false;
        void Commit()
        {
            if (committed)
                return;
            committed = true;
            // Every process here ended: the catalog places the part there before it is released there.
            notPlaced = placement?.Place(link.Peer, ArrivedAs);
            if (placement is { Placed.Length: > 0 })
                Faults.Check(FaultPoint.MovePlaced); // (a test pauses here to kill this node)
            commitAt = Stopwatch.GetTimestamp();
            try
            {
                link.Send(PeerMessage.Of(Ops.Commit));
                try
                {
                    link.Expect(Ops.Released);
                }
                finally
                {
                    _pages?.Push(); // it runs there, or may (this link says no more): all its memory goes now
                }
                runningAt = Stopwatch.GetTimestamp();
                // It runs there; its memory is placed while it does (a lazy restore from the checkpoints it
                // has; post-copy, from their page data as it arrives).
                if (_pages is not null)
                {
                    pagesFailed = true;
                    _pages.Completion.GetAwaiter().GetResult();
                    pagesFailed = false;
                }
                link.WaitAtMost(RestoreWait);
                running = link.Expect(Ops.Running);
                memoryInAt = Stopwatch.GetTimestamp();
            }
            catch (IOException e)
            {
                commitFailure = e;
            }
        }
        progress?.Invoke(new ProgressSample { Phase = "final round (frozen)" });
        var taken = Stopwatch.StartNew();
        // Until the hand-over sends, the destination hears that this side is at work (the checkpoint of
        // a stop-and-copy is the whole memory).
        using var beating = link.KeepAlive();
        // Nothing sent yet (stop and copy): a full checkpoint sends the memory once, where one after the
        // group's latest would send that one's whole chain with it. Post-copy: after the one kept here.
        var response = services.CheckpointAndHandOver(group, full: !postCopy && sent.Count == 0, last =>
        {
            beating.Dispose();
            decidedAt = Stopwatch.GetTimestamp();
            finalId = last.Id;
            try
            {
                (finalBytes, sendMs, var later) = Send(group.Store, last.Id, link, sent, postCopy, sealedAt: last.Path);
                sentAt = Stopwatch.GetTimestamp();
                if (postCopy)
                    ServePages([.. _later, .. later]);
                pageLinkAt = Stopwatch.GetTimestamp();
                link.Send(new PeerMessage { Op = Ops.Restore, Checkpoints = [last.Id] });
                link.WaitAtMost(RestoreWait);
                link.Expect(Ops.Prepared);
                preparedAt = Stopwatch.GetTimestamp();
                return null; // made there and held: it may end here
            }
            catch (Exception e) when (e is IOException or ImageFormatException or ImageStoreException)
            {
                failure = e.Message;
                return $"the migration to node {link.Peer} failed ({e.Message})";
            }
        }, ended: Commit, storage: !_storageShared);
        beating.Dispose();
        if (!committed && (!response.Ok || !response.Ended))
        {
            string why = failure ?? (response.Ok ? string.Join("; ", response.Stderr) : $"the final checkpoint failed: {response.Error}");
            TryAbort(link, why);
            logger.MigrationOutFailed(name, link.Peer, why);
            return ControlResponse.Failure($"migration of group {name} to node {link.Peer} failed: {why}; it runs on here");
        }
        // Ended here (a worker that said so before reporting, or reported it): the destination's copy is the group.
        Commit();
        rounds.Add(new MigrationRound(finalId, finalBytes, taken.Elapsed.TotalMilliseconds, sendMs, response.Figure("frozenMs")));
        if (running is null && pagesFailed)
        {
            string why = $"its memory did not all get there ({commitFailure?.Message})";
            logger.MigrationOutFailed(name, link.Peer, why);
            return ControlResponse.Failure($"group {name} was ended here and released on node {link.Peer}, but {why}: it cannot run there, and its checkpoints are kept here: amber restore --group {name}");
        }
        if (running is null)
        {
            string why = commitFailure?.Message ?? "no answer";
            logger.MigrationOutFailed(name, link.Peer, why);
            return ControlResponse.Failure($"group {name} was ended here once node {link.Peer} had made it again, but {link.Peer} did not confirm that it runs ({why}); "
                + $"its checkpoint {finalId} is on both nodes: amber restore --group {name} on {link.Peer}, or here");
        }
        // From the freeze to the commit (the worker's clock), then to the destination's "running" (ours).
        double frozenBeforeMs = response.Figure("frozenBeforeEndMs"), handOverMs = Stopwatch.GetElapsedTime(decidedAt, runningAt).TotalMilliseconds;
        double downtimeMs = frozenBeforeMs + handOverMs;
        double totalMs = clock.Elapsed.TotalMilliseconds;
        long afterRelease = _pages?.Bytes ?? 0; // post-copy: the page data, sent while it ran there
        long bytes = rounds.Sum(r => r.Bytes) + afterRelease;
        var warnings = services.Forget(group).Select(w => $"warning: {w}").Concat(running.Warnings.Select(w => $"warning: node {link.Peer}: {w.Replace("warning: ", "", StringComparison.Ordinal)}")).ToList();
        if (_storageSent is not null)
            warnings.Insert(0, $"warning: {_storageSent}");
        if (notPlaced is not null)
            warnings.Add($"warning: the catalog still places it on this node ({notPlaced}) until its leader's next checkpoint across nodes");
        string storage = group.Config.Storage.Count == 0 ? "" : _storageShared ? "left in place (shared)" : "sent";
        string summary = string.Create(CultureInfo.InvariantCulture,
            $"{request.Mode}, {rounds.Count} round(s) ({string.Join(", ", rounds.Select(r => Mib(r.Bytes)))}){(postCopy ? $", {Mib(afterRelease)} of pages after the release" : "")}, {Mib(bytes)} sent{(storage.Length > 0 ? $", storage {storage}" : "")}, downtime {downtimeMs:0} ms, total {totalMs:0} ms; roots there {string.Join(' ', running.Roots)}; its checkpoints here deleted");
        logger.MigratedOut(name, link.Peer, summary);
        return new ControlResponse
        {
            // Under another name there: said on stderr beside the summary, not as a warning (the report's arrivedAs says it too).
            Ok = true, Stdout = [link.Peer],
            Stderr = [.. warnings, .. ArrivedAs == name ? Array.Empty<string>() : [$"group {name} runs on node {link.Peer} as group {ArrivedAs}, a part of group {group.Config.Across} there (whose part there has its name)"],
                $"migrated group {name} to node {link.Peer}: {summary}"],
            Report = ReportJson.Write(w =>
            {
                w.WriteStartObject();
                w.WriteString("group", name);
                w.WriteString("to", link.Peer);
                w.WriteString("arrivedAs", ArrivedAs);
                w.WriteString("address", request.To);
                w.WriteString("mode", request.Mode);
                w.WriteStartArray("rounds");
                foreach (var r in rounds)
                {
                    w.WriteStartObject();
                    w.WriteString("checkpoint", r.Checkpoint);
                    w.WriteNumber("bytes", r.Bytes);
                    w.WriteNumber("checkpointMs", Math.Round(r.CheckpointMs, 1));
                    w.WriteNumber("sendMs", Math.Round(r.SendMs, 1));
                    w.WriteNumber("frozenMs", Math.Round(r.FrozenMs, 1));
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteNumber("bytes", bytes);
                if (storage.Length > 0)
                    w.WriteString("storage", _storageShared ? "shared" : "sent");
                w.WriteNumber("pagesAfterReleaseBytes", afterRelease);
                w.WriteNumber("downtimeMs", Math.Round(downtimeMs, 1));
                w.WriteNumber("frozenBeforeHandOverMs", Math.Round(frozenBeforeMs, 1)); // freeze to the last checkpoint committed here
                w.WriteNumber("handOverMs", Math.Round(handOverMs, 1)); // from then to the group running there
                // The hand-over's parts: the last checkpoint sent, its pages served (post-copy: the page link is open already), the
                // group made there and held, its processes here ended, released there.
                w.WriteStartObject("handOverPartsMs");
                w.WriteNumber("send", Ms(decidedAt, sentAt));
                w.WriteNumber("pageLink", Ms(sentAt, pageLinkAt));
                w.WriteNumber("restoreThere", Ms(pageLinkAt, preparedAt));
                w.WriteNumber("endHere", Ms(preparedAt, commitAt));
                w.WriteNumber("release", Ms(commitAt, runningAt));
                w.WriteEndObject();
                w.WriteNumber("memoryInMs", Math.Round(Stopwatch.GetElapsedTime(runningAt, memoryInAt).TotalMilliseconds, 1)); // from then to its last page placed there
                w.WriteNumber("totalMs", Math.Round(totalMs, 1));
                w.WriteNumbers("roots", running.Roots);
                if (placement is { Placed.Length: > 0 })
                    w.WriteString("placed", placement.Placed); // the catalog entry that places it there
                w.WriteStrings("warnings", warnings);
                w.WriteEndObject();
            }),
        };
    }

    /// <summary>
    /// Streams checkpoint <paramref name="id"/> and every earlier one it needs that the destination
    /// has not got yet (oldest first); returns the bytes sent and the time it took, and with
    /// <paramref name="pagesLater"/> (post-copy) the page files whose data was left out. A hand-over's
    /// checkpoint is read where it was sealed (<paramref name="sealedAt"/>), before it is committed.
    /// </summary>
    private static (long Bytes, double Ms, List<(string Path, long Size)> Later) Send(GroupStore store, string id, PeerLink link, HashSet<string> sent, bool pagesLater,
        string? sealedAt = null)
    {
        var clock = Stopwatch.StartNew();
        var chain = store.Chain(id, sent, sealedAt);
        var names = chain.Select(c => c.Id).ToList();
        link.Send(new PeerMessage { Op = Ops.Checkpoints, Checkpoints = names });
        var writer = CheckpointStreamWriter.Begin(link.Stream);
        foreach (var checkpoint in chain)
            writer.Write(checkpoint.Path, pagesLater, checkpoint.Id);
        writer.End();
        var answer = link.Expect(Ops.Ok);
        if (!answer.Checkpoints.SequenceEqual(names))
            throw new IOException($"node {link.Peer} received {string.Join(", ", answer.Checkpoints)}, not {string.Join(", ", names)}");
        sent.UnionWith(names);
        return (writer.BytesWritten, clock.Elapsed.TotalMilliseconds, writer.PagesLater);
    }


    private static void TryAbort(PeerLink link, string why)
    {
        try
        {
            link.Send(new PeerMessage { Op = Ops.Abort, Error = why.ReplaceLineEndings(" ") });
        }
        catch (Exception e) when (e is IOException or ObjectDisposedException or InvalidOperationException)
        {
            // The link is what failed: the destination removes what it made when it sees it end.
        }
    }

    /// <summary>Closes a post-copy's page link (its server's threads end with it) and its files.</summary>
    public void Dispose()
    {
        _pagesLink?.Dispose();
        _pages?.Dispose();
    }

    private static double Ms(long from, long to) => from == 0 || to == 0 ? 0 : Math.Round(Stopwatch.GetElapsedTime(from, to).TotalMilliseconds, 1);

    private static string Mib(long bytes) => string.Create(CultureInfo.InvariantCulture, $"{bytes / 1048576.0:0.0} MiB");
}

/// <summary>A migration step that cannot be done, said in one line.</summary>
internal sealed class MigrationException(string message) : Exception(message);
