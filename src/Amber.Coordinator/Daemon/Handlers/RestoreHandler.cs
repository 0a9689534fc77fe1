using System.Globalization;
using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Store;
using Amber.Coordinator.Monitoring;
using Amber.Coordinator.Security;
using Amber.Coordinator.Workers;
using Amber.Image;
using Amber.Kernel.Files;
using Amber.Kernel.Processes;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>amber restore --group, and restarts on failure: every process of the group back from a checkpoint, by a worker.</summary>
internal sealed class RestoreHandler(AmberHome home, ChildReaper reaper, StoreApproval approval, CoordinatorMetrics metrics, ILogger logger) : IGroupHandler<RestoreRequest>
{
    public ControlResponse Handle(GroupRuntime group, RestoreRequest request, Requester who, Action<ProgressSample>? progress)
    {
        if (approval.Confirm(group) is { } changed)
            return ControlResponse.Failure(changed);
        var live = group.LiveProcesses();
        if (live.Count > 0)
            return ControlResponse.Failure($"group {group.Config.Name} is running ({live.Count} processes); stop it first (amber stop --group {group.Config.Name})");
        string from = request.From;
        bool withStorage = group.Config.Storage.Count > 0;
        var checkpoint = from.Length > 0 ? group.Store.Find(from) : group.Store.LatestWhole(withStorage);
        if (checkpoint is null)
            return ControlResponse.Failure(from.Length > 0 ? $"group {group.Config.Name} has no checkpoint {from}"
                : $"group {group.Config.Name} cannot be restored: {GroupStore.NoneWhole(group.Store, withStorage)}{(group.Store.Latest() is { } latest ? $"; amber restore --group {group.Config.Name} --from {latest.Id} restores its memory alone" : "")}");
        return RestoreFrom(group, checkpoint.Path, checkpoint.Id, who, progress);
    }

    /// <summary>Restores the group from a checkpoint, bringing back only processes whose credentials <paramref name="who"/> holds.</summary>
    /// <param name="handOver">Asked once every process is made, before any runs: null releases them; otherwise they are killed and the restore fails, saying why.</param>
    /// <param name="released">With <paramref name="handOver"/>: called once they run.</param>
    /// <param name="lazy">Release them before their memory is in; the worker places it, and reports once it has.</param>
    /// <param name="pagesFrom">The checkpoint's page files are still arriving: the worker's reads wait for these (a post-copy migration's).</param>
    /// <param name="later">
    /// With <paramref name="handOver"/>, <paramref name="images"/> <see cref="HandOver.Later"/>: the worker is
    /// started now, gets ready, and restores the checkpoint this gives when it returns (null: none, the
    /// restore fails) — a migration's destination starts it before the last round.
    /// </param>
    public ControlResponse RestoreFrom(GroupRuntime group, string images, string id, Requester who, Action<ProgressSample>? progress = null, Func<string?>? handOver = null,
        Action? released = null, bool lazy = false, IPageArrivals? pagesFrom = null, Func<(string Images, string Id)?>? later = null)
    {
        string[] admit = who.IsRoot ? [] : ["--for", who.ToArgument()];
        // Its address of its own: the bridge its veth pair is attached to, and its published ports (made again after a reboot).
        if (GroupNetwork.PrepareHostProblem(group.Config) is { } hostSide)
            return ControlResponse.Failure(hostSide);
        List<string> args = ["restore-group", "--images", images, "--cgroup", group.Cgroup.Path, "--lock", home.WorkerLock(group.Config.Name), .. admit, .. GroupKey.Arguments(group.Config, "--key"),
            .. lazy ? ["--lazy"] : Array.Empty<string>()];
        WorkerReport report;
        if (handOver is null)
        {
            report = Worker.Run(reaper, home.DaemonLog, args, progress: progress);
        }
        else
        {
            var (ours, theirs) = FdChannel.Pair();
            var (needs, needing) = pagesFrom is null ? (null, null) : FdChannel.Pair();
            using (ours)
            using (needs)
            {
                HandOver.Answerer answerer;
                Thread? answering = null;
                using (theirs)
                using (needing)
                {
                    answerer = HandOver.Answer(ours, _ => handOver(), released: released, images: later is null ? null : () =>
                    {
                        var chosen = later();
                        if (chosen is { } c)
                            id = c.Id; // read once the answerer is joined
                        return chosen?.Images;
                    });
                    if (needs is not null)
                        answering = PageNeeds.Answer(needs, pagesFrom!);
                    report = needing is null
                        ? Worker.Run(reaper, home.DaemonLog, [.. args, "--hand-over", "3"], [(3, theirs.Fd)], progress)
                        : Worker.Run(reaper, home.DaemonLog, [.. args, "--hand-over", "3", "--pages-from", "4"], [(3, theirs.Fd), (4, needing.Fd)], progress);
                }
                answerer.Join();
                answering?.Join();
            }
        }
        if (!report.Ok && later is not null && id.Length == 0)
            return ControlResponse.Failure(report.Error); // started ahead, and told there was nothing to restore: nothing was tried
        metrics.Restored(group.Config.Name, report.Ok);
        if (!report.Ok)
        {
            // A lazy restore's worker that ended before all the memory was in leaves processes with
            // pages missing for good (its pager kills them when it can; killed itself, it cannot).
            if (lazy)
                group.KillAll();
            // Nothing of the group runs: nothing of it stays on the host (its veth pair went with the worker's namespace).
            if (group.Config.Net.Length > 0)
                GroupNetwork.TryUnpublish(group.Config);
            logger.RestoreFailed(group.Config.Name, id, report.Error);
            return ControlResponse.Failure(report.Error);
        }
        group.DropTrackers(); // they tracked the memory of processes that are gone
        group.Config.Roots = report.Roots;
        group.Config.Launched = [.. report.Roots]; // the worker's orphans: the coordinator's children now
        group.Save();
        group.Registrations.AfterRestore(id, report.Processes);
        string summary = string.Create(CultureInfo.InvariantCulture,
            $"{report.Roots.Count} tree(s), roots {string.Join(' ', report.Roots)}{(report.Storage.Length > 0 ? $", storage rolled back ({report.Storage})" : "")}, in {report.TotalMs:0} ms");
        logger.Restored(group.Config.Name, id, summary);
        return new ControlResponse
        {
            Ok = true, Stdout = [.. report.Roots.Select(r => r.ToString(CultureInfo.InvariantCulture))],
            Stderr = [.. report.Warnings.Select(w => $"warning: {w}"), $"restored group {group.Config.Name} from {id}: {summary}"],
            Report = ReportJson.Write(w =>
            {
                w.WriteStartObject();
                w.WriteString("group", group.Config.Name);
                w.WriteString("checkpoint", id);
                w.WriteNumbers("roots", report.Roots);
                w.WriteNumbers("processes", report.Processes);
                w.WriteNumber("totalMs", Math.Round(report.TotalMs, 1));
                w.WriteString("storage", report.Storage.Length == 0 ? null : report.Storage);
                w.WriteStrings("warnings", report.Warnings);
                w.WriteEndObject();
            }),
        };
    }
}
