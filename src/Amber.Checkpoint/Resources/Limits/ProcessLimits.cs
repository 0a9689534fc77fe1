using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Limits;

/// <summary>
/// What limits a process from then on: its resource limits, no_new_privs, the child-subreaper flag,
/// transparent huge pages disabled, memory-deny-write-execute, and how the OOM killer weighs it (oom_score_adj). Set late in a
/// restore, once nothing the restore does needs more than they allow.
/// </summary>
public static class ProcessLimits
{
    public static void Dump(RemoteCalls calls, int pid, ProcessImage image)
    {
        image.NoNewPrivs = calls.GetNoNewPrivileges();
        image.ChildSubreaper = calls.GetChildSubreaper();
        image.ThpDisabled = calls.GetThpDisabled();
        image.MemoryDenyWriteExecute = calls.GetMemoryDenyWriteExecute();
        image.OomScoreAdj = ProcFs.ReadOomScoreAdjust(pid);
        var limits = ProcFs.ReadLimits(pid);
        if (limits.Length != RemoteCalls.ResourceCount)
            throw new CheckpointException($"process {pid}: /proc/{pid}/limits lists {limits.Length} resources, expected {RemoteCalls.ResourceCount}");
        for (int resource = 0; resource < limits.Length; resource++)
            image.Rlimits.Add(new ResourceLimit { Resource = resource, Soft = limits[resource].Soft, Hard = limits[resource].Hard });
    }

    public static void Restore(RemoteCalls calls, ProcessImage image, List<string> warnings)
    {
        foreach (var limit in image.Rlimits)
        {
            try
            {
                calls.SetResourceLimit(limit.Resource, limit.Soft, limit.Hard);
            }
            catch (KernelCallException e) when (e.Errno == Errnos.EPERM)
            {
                warnings.Add($"process {image.Pid}: resource limit {limit.Resource} could not be raised back to {limit.Soft}/{limit.Hard} (that needs CAP_SYS_RESOURCE)");
            }
        }
        if (image.NoNewPrivs)
            calls.SetNoNewPrivileges();
        if (image.ChildSubreaper)
            calls.SetChildSubreaper();
        if (image.ThpDisabled)
            calls.SetThpDisabled();
        // Last of what touches memory: nothing the restore does after it makes a mapping executable.
        if (image.MemoryDenyWriteExecute != 0)
        {
            try
            {
                calls.SetMemoryDenyWriteExecute(image.MemoryDenyWriteExecute);
            }
            catch (KernelCallException e)
            {
                warnings.Add($"process {image.Pid}: memory-deny-write-execute (PR_SET_MDWE {image.MemoryDenyWriteExecute}) could not be set again: {e.Message}");
            }
        }
        if (image.HasOomScoreAdj)
        {
            int pid = calls.Injector.Thread.Pid;
            try
            {
                if (ProcFs.ReadOomScoreAdjust(pid) != image.OomScoreAdj)
                    ProcFs.WriteOomScoreAdjust(pid, image.OomScoreAdj);
            }
            catch (Exception e) when (e is UnauthorizedAccessException or IOException)
            {
                warnings.Add($"process {image.Pid}: its oom_score_adj could not be set back to {image.OomScoreAdj} (lowering it needs CAP_SYS_RESOURCE): {e.Message}");
            }
        }
    }
}
