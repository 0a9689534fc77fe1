using System.Globalization;
using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Monitoring;
using Amber.Coordinator.Security;
using Amber.Coordinator.Store;
using Amber.Coordinator.Workers;
using Amber.Kernel.Files;
using Amber.Kernel.Processes;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>
/// amber checkpoint --group, and scheduled checkpoints: one checkpoint of the whole group at one
/// barrier, by a worker. Registered programs are told before and after; the write trackers the
/// coordinator keeps between checkpoints go to the worker and new ones come back.
/// </summary>
internal sealed class CheckpointHandler(AmberHome home, ChildReaper reaper, StoreApproval approval, CoordinatorMetrics metrics, ILogger logger) : IGroupHandler<CheckpointRequest>
{
    public ControlResponse Handle(GroupRuntime group, CheckpointRequest request, Requester who, Action<ProgressSample>? progress) =>
        Checkpoint(group, request.Stop, request.Full, progress);

    /// <summary>Incremental after the group's latest checkpoint unless <paramref name="full"/> (or there is none).</summary>
    /// <param name="handOver">
    /// With <paramref name="stop"/>: asked with the checkpoint once it is whole (sealed, not yet in
    /// place: it is committed after the answer), the processes frozen, whether they may end (null) or
    /// must run on (why not); a response's <see cref="ControlResponse.Ended"/> says which happened.
    /// </param>
    /// <param name="ended">With <paramref name="handOver"/>: called once its processes were sent SIGKILL after a go, before they are collected and the worker reports.</param>
    /// <param name="storage">Its storage captured too (false: a migration's, which leaves shared storage in place).</param>
    /// <param name="barrier">Without <paramref name="stop"/>: the checkpoint is a part of one across nodes, held at its barriers.</param>
    public ControlResponse Checkpoint(GroupRuntime group, bool stop, bool full, Action<ProgressSample>? progress = null, Func<SealedCheckpoint, string?>? handOver = null,
        Action? ended = null, bool storage = true, PartBarrier? barrier = null)
    {
        if (group.LiveProcesses().Count == 0)
            return ControlResponse.Failure($"group {group.Config.Name} has no running process to checkpoint");
        if (approval.Confirm(group) is { } changed)
            return ControlResponse.Failure(changed);
        approval.RemoveLeftovers(group);
        string images = group.Store.NextPath();
        string id = Path.GetFileName(images);
        // Programs that asked to be told get their chance to prepare, within the deadline.
        var prepared = group.Registrations.BeforeCheckpoint(id, TimeSpan.FromSeconds(group.Config.DeadlineSeconds));
        var latest = full ? null : group.Store.Latest();
        var args = WorkerArguments(group, images, stop, latest, storage);
        if (handOver is not null)
            args.Add("--hand-over");
        Func<string, string?>? decide = handOver is null ? null : sealedAt => Sealed(images, sealedAt) is { } checkpoint ? handOver(checkpoint) : $"the worker said its checkpoint is at '{sealedAt}'";
        if (barrier is not null && !stop)
        {
            args.Add("--barrier");
            decide = about => about switch
            {
                HandOver.BeforeFreeze => barrier.BeforeFreeze(),
                HandOver.AtBarrier => barrier.AtBarrier(),
                _ => $"the worker asked '{about}' where a barrier was expected",
            };
        }
        var report = RunWorker(group, args, passTrackers: latest is not null && latest.Id == group.Config.LastCheckpoint, stop, progress, decide, ended, questions: barrier is not null && !stop ? 2 : 1);
        bool ranOn = stop && !report.Ended;
        if (!report.Ok)
        {
            logger.CheckpointFailed(group.Config.Name, report.Error);
            metrics.CheckpointFailed(group.Config.Name);
            group.Registrations.AfterCheckpoint(id); // they run on as before
            return ControlResponse.Failure(report.Error);
        }
        report.Warnings.AddRange(prepared);
        metrics.CheckpointTaken(group.Config.Name, report.Parent.Length > 0, report.FrozenMs, report.TotalMs, report.Bytes, report.Pages, report.PagesKept);
        if (!stop || ranOn)
            group.Registrations.AfterCheckpoint(id);
        if (group.Store.Find(id) is { } taken && group.MergePolicy.IsDue(taken, group.Store))
            group.MergePending = true; // folded in the background once this operation is over
        group.RetentionPending = group.Retention.IsSet;
        group.Config.LastCheckpoint = id;
        group.Config.LastCheckpointUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        group.Config.LastCheckpointPids = report.Processes;
        if (stop && !ranOn)
        {
            // Ended on purpose: not a failure.
            group.Config.Roots.Clear();
            group.Config.Launched.Clear();
        }
        group.Save();
        string summary = string.Create(CultureInfo.InvariantCulture,
            $"{(report.Parent.Length > 0 ? $" (incremental after {report.Parent}: {report.Pages} pages written, {report.PagesKept} kept, {report.PagesSkipped} of them known unwritten{(report.PagesCopiedBeforeTheFreeze > 0 ? $", {report.PagesCopiedBeforeTheFreeze} copied before the freeze" : "")})" : " (full)")}: {report.Processes.Count} processes, {report.Bytes / 1048576.0:0.0} MiB{(report.Storage.Length > 0 ? $", storage {report.Storage}" : "")}, barrier {report.BarrierMs:0.0} ms, frozen {report.FrozenMs:0} ms, total {report.TotalMs:0} ms");
        logger.CheckpointTaken(group.Config.Name, id, summary);
        return new ControlResponse
        {
            Ok = true, Ended = stop && !ranOn, Stdout = [id], Stderr = [.. report.Warnings.Select(w => $"warning: {w}"), $"checkpointed group {group.Config.Name} as {id}{summary}"],
            Report = ReportJson.Write(w =>
            {
                w.WriteStartObject();
                w.WriteString("group", group.Config.Name);
                w.WriteString("checkpoint", id);
                w.WriteString("images", images);
                w.WriteNumbers("processes", report.Processes);
                w.WriteNumber("pages", report.Pages);
                w.WriteNumber("pagesKept", report.PagesKept);
                w.WriteNumber("bytes", report.Bytes);
                w.WriteNumber("barrierMs", Math.Round(report.BarrierMs, 1));
                w.WriteNumber("frozenMs", Math.Round(report.FrozenMs, 1));
                w.WriteNumber("frozenAtUnixMs", Math.Round(report.FrozenAtUnixMs, 3));
                if (stop)
                    w.WriteNumber("frozenBeforeEndMs", Math.Round(report.FrozenBeforeEndMs, 1));
                w.WriteNumber("totalMs", Math.Round(report.TotalMs, 1));
                w.WriteString("parent", report.Parent.Length == 0 ? null : report.Parent);
                w.WriteString("storage", report.Storage.Length == 0 ? null : report.Storage);
                w.WriteBoolean("stopped", stop && !ranOn);
                w.WriteStrings("warnings", report.Warnings);
                w.WriteEndObject();
            }),
        };
    }

    private List<string> WorkerArguments(GroupRuntime group, string images, bool stop, StoredCheckpoint? parent, bool storage)
    {
        var args = new List<string>
        {
            "checkpoint-group", "--group", group.Config.Name, "--cgroup", group.Cgroup.Path, "--images", images,
            "--reconnect", group.Registrations.SocketPath, "--lock", home.WorkerLock(group.Config.Name),
        };
        if (stop)
            args.Add("--stop");
        if (group.Config.Compress is { Length: > 0 } and not "none")
            args.AddRange(["--compress", group.Config.Compress]);
        var captured = storage ? group.Config.Storage : [];
        foreach (string dir in captured)
            args.AddRange(["--storage", dir]);
        // The coordinator's own files are never captured or rolled back, wherever they are.
        if (captured.Count > 0)
        {
            foreach (string own in new[] { home.StateDirectory, home.RunDirectory, home.ShmDirectory })
                args.AddRange(["--storage-exclude", own]);
        }
        if (parent is not null)
            args.AddRange(["--parent", parent.Path]);
        args.AddRange(GroupKey.Arguments(group.Config, "--encrypt"));
        return args;
    }

    /// <summary>The checkpoint a worker says it sealed at <paramref name="sealedAt"/>, if that is the temporary directory of <paramref name="images"/>.</summary>
    private static SealedCheckpoint? Sealed(string images, string sealedAt) =>
        Path.GetDirectoryName(sealedAt) == Path.GetDirectoryName(images) && Path.GetFileName(sealedAt).StartsWith(Path.GetFileName(images) + ".tmp-", StringComparison.Ordinal)
        && Directory.Exists(sealedAt)
            ? new SealedCheckpoint(Path.GetFileName(images), sealedAt)
            : null;

    /// <summary>
    /// Runs the worker with a channel (its fd 3): the trackers kept since the latest checkpoint go to
    /// it if they are of use to this one (<paramref name="passTrackers"/>), and the new ones come back
    /// unless the group ends.
    /// </summary>
    private WorkerReport RunWorker(GroupRuntime group, List<string> args, bool passTrackers, bool stop, Action<ProgressSample>? progress, Func<string, string?>? handOver, Action? ended,
        int questions)
    {
        var (ours, theirs) = FdChannel.Pair();
        WorkerReport report;
        HandOver.Answerer? answerer = null;
        using (ours)
        {
            using (theirs)
            {
                if (passTrackers)
                {
                    foreach (var (pid, (uffd, ranges)) in group.Trackers)
                        TrackerMessages.Send(ours, pid, uffd, ranges);
                }
                else
                {
                    // Not of use to this checkpoint: let go now, or the memory they keep registered
                    // could not be registered again by the worker's new ones (EBUSY).
                    group.DropTrackers();
                }
                TrackerMessages.End(ours);
                if (handOver is not null)
                    answerer = HandOver.Answer(ours, handOver, ended, questions: questions);
                report = Worker.Run(reaper, home.DaemonLog, [.. args, "--channel", "3"], [(3, theirs.Fd)], progress);
            }
            answerer?.Join(); // the worker's end is closed with ours: it ends
            group.DropTrackers(); // their write state was read and reset by the worker: only what comes back holds
            if (report.Ok && !stop)
            {
                foreach (var (pid, tracker) in TrackerMessages.ReceiveAll(ours))
                    group.Trackers[pid] = tracker;
            }
        }
        return report;
    }
}
