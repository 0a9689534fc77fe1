using Amber.Checkpoint.Restore;
using Amber.Kernel;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Isolation;

/// <summary>
/// Each process back in the cgroup it was in (a service's, a session's scope...), with the limits and
/// accounting that come with it, when a restore is not of a group's checkpoint (a group's restore puts
/// its processes in the group's own cgroup; one by hand, out of the group, keeps them out): a process is born
/// in amber's, and moved (all its threads) before it runs. A cgroup that is gone is not made again
/// (its controllers and limits are unknown): its processes stay where they were born, said once.
/// </summary>
public static class ProcessCgroups
{
    public static void Restore(RestoreTree tree, List<string> warnings)
    {
        var missing = new HashSet<string>(StringComparer.Ordinal);
        foreach (var image in tree.Images.Where(i => !i.Zombie && i.Cgroup.Length > 0))
        {
            int pid = tree.HostId(image.Pid);
            if (ProcFs.ReadCgroup(pid) == image.Cgroup)
                continue;
            if (Cgroup.Open(image.Cgroup.TrimStart('/')) is not { } cgroup)
            {
                if (missing.Add(image.Cgroup))
                    warnings.Add($"cgroup {image.Cgroup} no longer exists: process {image.Pid} (and any other of it) stays in amber's ({ProcFs.ReadCgroup(pid)})");
                continue;
            }
            try
            {
                cgroup.Add(pid);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException or TargetGoneException)
            {
                warnings.Add($"process {image.Pid} could not be put back in cgroup {image.Cgroup}: {e.Message}");
            }
        }
    }
}
