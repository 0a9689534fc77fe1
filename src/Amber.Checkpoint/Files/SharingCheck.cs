using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Files;

/// <summary>
/// What processes of a tree share is rebuilt per process for now: shared memory would silently
/// become private copies, so it is refused; an open file shared by several processes gets one
/// offset per process after a restore, which only matters without O_APPEND, so it is reported.
/// </summary>
public static class SharingCheck
{
    private const uint Append = 0x400;

    public static List<string> Check(IReadOnlyList<ProcessImage> processes)
    {
        var owners = new Dictionary<ulong, int>();
        foreach (var p in processes)
        {
            foreach (ulong id in p.Mm.Vmas.Where(v => v.Kind == VmaKind.VmaShmem).Select(v => v.ShmemId)
                         .Concat(p.Fds.Where(f => f.Kind == FdKind.FdMemfd).Select(f => f.ShmemId)).Distinct())
            {
                if (owners.TryGetValue(id, out int other) && other != p.Pid)
                    throw new UnsupportedResourceException(p.Pid, $"shared memory object {id}, also used by process {other}", "memory shared between processes");
                owners[id] = p.Pid;
            }
        }
        var warnings = new List<string>();
        for (int i = 0; i < processes.Count; i++)
        {
            for (int j = i + 1; j < processes.Count; j++)
            {
                foreach (var a in processes[i].Fds.Where(f => f.Kind == FdKind.FdRegular && (f.Flags & Append) == 0))
                {
                    foreach (var b in processes[j].Fds.Where(f => f.Kind == FdKind.FdRegular && f.Path == a.Path))
                    {
                        if (ProcessFiles.SameDescription(processes[i].Pid, a.Fd, processes[j].Pid, b.Fd))
                            warnings.Add($"fd {a.Fd} of process {processes[i].Pid} and fd {b.Fd} of process {processes[j].Pid} share one offset in {a.Path}; after a restore each has its own");
                    }
                }
            }
        }
        return warnings;
    }
}
