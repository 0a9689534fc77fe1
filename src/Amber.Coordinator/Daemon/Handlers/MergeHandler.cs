using System.Globalization;
using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Monitoring;
using Amber.Coordinator.Security;
using Amber.Coordinator.Workers;
using Amber.Kernel.Processes;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>amber merge --group, and the merges the merge policy asks for: a checkpoint and its chain folded into one full checkpoint, by a worker.</summary>
internal sealed class MergeHandler(AmberHome home, ChildReaper reaper, StoreApproval approval, CoordinatorMetrics metrics, ILogger logger) : IGroupHandler<MergeRequest>
{
    public ControlResponse Handle(GroupRuntime group, MergeRequest request, Requester who, Action<ProgressSample>? progress) => Merge(group, request.From, progress);

    /// <summary>Folds checkpoint <paramref name="from"/> (empty: the latest) and the earlier ones it refers to.</summary>
    public ControlResponse Merge(GroupRuntime group, string from, Action<ProgressSample>? progress = null)
    {
        group.MergePending = false;
        if (approval.Confirm(group) is { } changed)
            return ControlResponse.Failure(changed);
        var checkpoint = from.Length > 0 ? group.Store.Find(from) : group.Store.Latest();
        if (checkpoint is null)
            return ControlResponse.Failure(from.Length > 0 ? $"group {group.Config.Name} has no checkpoint {from}" : $"group {group.Config.Name} has no checkpoint yet");
        // With a retention policy, the policy decides which of the chain's checkpoints stay.
        bool retained = group.Retention.IsSet;
        string[] keepChain = retained ? ["--keep-chain"] : [];
        var report = Worker.Run(reaper, home.DaemonLog, ["merge", "--images", checkpoint.Path, "--lock", home.WorkerLock(group.Config.Name), .. keepChain, .. GroupKey.Arguments(group.Config, "--key")], progress: progress);
        metrics.Merged(group.Config.Name, report.Ok);
        if (!report.Ok)
        {
            logger.MergeFailed(group.Config.Name, checkpoint.Id, report.Error);
            return ControlResponse.Failure(report.Error);
        }
        string summary = string.Create(CultureInfo.InvariantCulture,
            $"({report.Pages} pages, {report.Bytes / 1048576.0:0.0} MiB) in {report.TotalMs:0} ms{(report.Removed.Count > 0 ? $"; removed {string.Join(" ", report.Removed)}" : "")}");
        logger.Merged(group.Config.Name, checkpoint.Id, summary);
        group.RetentionPending = retained;
        return new ControlResponse { Ok = true, Stdout = [checkpoint.Id], Stderr = [$"merged group {group.Config.Name}'s {checkpoint.Id} into a full checkpoint {summary}"] };
    }

    /// <summary>
    /// Applies the group's retention policy to its store: checkpoints beyond it are removed, once the
    /// kept ones that referred to them are folded into full ones (by a worker, as a merge).
    /// </summary>
    public ControlResponse Retain(GroupRuntime group)
    {
        group.RetentionPending = false;
        var policy = group.Retention;
        if (!policy.IsSet)
            return new ControlResponse { Ok = true };
        if (approval.Confirm(group) is { } changed)
            return ControlResponse.Failure(changed);
        var report = Worker.Run(reaper, home.DaemonLog, ["retain", "--store", group.Store.Directory,
            "--keep-last", policy.KeepLast.ToString(CultureInfo.InvariantCulture),
            "--keep-for-seconds", policy.KeepFor.TotalSeconds.ToString(CultureInfo.InvariantCulture), "--lock", home.WorkerLock(group.Config.Name),
            .. GroupKey.Arguments(group.Config, "--key")]);
        if (!report.Ok)
        {
            logger.RetentionFailed(group.Config.Name, policy.ToString(), report.Error);
            return ControlResponse.Failure(report.Error);
        }
        metrics.RetentionRemoved(group.Config.Name, report.Removed.Count);
        if (report.Removed.Count > 0 || report.Merged.Count > 0)
            logger.Retained(group.Config.Name, policy.ToString(), report.Removed.Count > 0 ? string.Join(" ", report.Removed) : "nothing",
                report.Merged.Count > 0 ? $" (first folded into full checkpoints: {string.Join(" ", report.Merged)})" : "");
        return new ControlResponse { Ok = true, Stdout = [.. report.Removed] };
    }
}
