using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;
using Amber.Kernel;
using Amber.Kernel.Proc;
using Amber.Kernel.Processes;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>amber attach, and ADD from a registered program: a running process tree joins the group.</summary>
internal sealed class AttachHandler(ILogger logger) : IGroupHandler<AttachRequest>
{
    public ControlResponse Handle(GroupRuntime group, AttachRequest request, Requester who, Action<ProgressSample>? progress) => Attach(group, request.Pid, who.Uid);

    /// <summary>ADD from a registered program: attach a tree, if the program's user may; null, or why not.</summary>
    public string? ForRegistration(GroupRuntime group, int pid, uint uid)
    {
        group.Busy.Wait();
        try
        {
            var response = Attach(group, pid, uid);
            return response.Ok ? null : response.Error;
        }
        finally
        {
            group.RefreshTable();
            group.Busy.Release();
        }
    }

    /// <summary>A group with namespaces of its own takes only processes in them (its checkpoints make them again, with every process inside).</summary>
    private static string? OutsideNamespaces(GroupRuntime group, int pid)
    {
        if (group.Config.Isolate.Count == 0)
            return null;
        var members = group.LiveProcesses();
        foreach (var kind in group.Config.Isolate.Select(k => Namespaces.Parse(k) ?? throw new InvalidOperationException($"group {group.Config.Name}: unknown namespace '{k}'")))
        {
            string? theirs = Namespaces.Of(pid, kind);
            string? ours = members.Count > 0 ? Namespaces.Of(members[0], kind) : null;
            if (ours is null || theirs != ours)
                return $"process {pid} is not in the {kind.ProcName()} namespace of group {group.Config.Name} (--isolate {string.Join(",", group.Config.Isolate)}); "
                    + $"start it in the group instead: amber run --group {group.Config.Name} -- PROGRAM";
        }
        return null;
    }

    /// <summary>Adds a running process tree: every process of it moves into the group's cgroup (forks meanwhile are caught by re-listing).</summary>
    private ControlResponse Attach(GroupRuntime group, int pid, uint uid)
    {
        if (!ProcFs.TryReadStatus(pid, out var status) || status is null || status.State is 'Z' or 'X')
            return ControlResponse.Failure($"process {pid} does not exist");
        // All its uids (a set-user-id program's effective one too): the coordinator checkpoints it as root.
        if (uid != 0 && status.Uids.Any(u => u != uid))
            return ControlResponse.Failure($"process {pid} runs as uids {string.Join(' ', status.Uids)} (real, effective, saved, filesystem); a group of uid {uid} takes only processes wholly its own");
        if (group.Config.Roots.Contains(pid))
            return ControlResponse.Failure($"process {pid} is already in group {group.Config.Name}");
        if (OutsideNamespaces(group, pid) is { } elsewhere)
            return ControlResponse.Failure(elsewhere);
        for (int pass = 0; pass < 100; pass++)
        {
            var tree = ProcessTree.Of(pid);
            var outside = tree.Where(p => !group.Cgroup.Processes().Contains(p)).ToList();
            if (outside.Count == 0)
            {
                group.Config.Roots.Add(pid);
                group.Save();
                logger.Attached(group.Config.Name, pid, tree.Count);
                return new ControlResponse { Ok = true, Stderr = [$"attached process {pid} and its {tree.Count - 1} descendant(s) to group {group.Config.Name}"] };
            }
            foreach (int p in outside)
            {
                try { group.Cgroup.Add(p); }
                catch (TargetGoneException) { }
            }
        }
        return ControlResponse.Failure($"process tree {pid} kept changing while being attached");
    }
}
