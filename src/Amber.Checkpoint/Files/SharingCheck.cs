using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Files;

/// <summary>
/// What processes of a tree share. Shared memory is rebuilt per process for now, so sharing it
/// across processes is refused. An open file (or socket) shared by several processes — one offset,
/// one set of flags — is opened once at restore by their lowest common ancestor and inherited by the
/// others (<see cref="ProcessImage.SharedFiles"/>), as it was when they forked.
/// </summary>
public static class SharingCheck
{
    private static readonly FdKind[] Shareable = [FdKind.FdRegular, FdKind.FdDirectory, FdKind.FdDevNull, FdKind.FdCharacterDevice, FdKind.FdSocket];

    public static List<string> Check(IReadOnlyList<ProcessImage> processes)
    {
        InheritedSharedMemory(processes);
        var deleted = new Dictionary<ulong, int>();
        foreach (var p in processes)
        {
            foreach (var fd in p.Fds.Where(f => f.Kind == FdKind.FdDeletedFile))
            {
                if (deleted.TryGetValue(fd.DeletedFile, out int other) && other != p.Pid)
                    throw new UnsupportedResourceException(p.Pid, $"fd {fd.Fd} ({fd.Path}, deleted)", $"a deleted file also open in process {other}");
                deleted[fd.DeletedFile] = p.Pid;
            }
        }
        var warnings = new List<string>();
        SharedFiles(processes);
        return warnings;
    }

    /// <summary>
    /// Shared memory a child got from its parent over fork — mapped at the same place in both — is
    /// restored by the same inheritance: the child keeps its parent's mapping (Vma.inherited) and the
    /// contents are saved once, with the first process that maps it. Any other sharing is refused.
    /// </summary>
    private static void InheritedSharedMemory(IReadOnlyList<ProcessImage> processes)
    {
        var byPid = processes.ToDictionary(p => p.Pid);
        var owners = new Dictionary<ulong, int>();
        foreach (var p in processes) // parents before children
        {
            foreach (var fd in p.Fds.Where(f => f.Kind == FdKind.FdMemfd))
            {
                if (owners.TryGetValue(fd.ShmemId, out int other) && other != p.Pid)
                    throw new UnsupportedResourceException(p.Pid, $"fd {fd.Fd} ({fd.Path})", $"a memfd also open or mapped in process {other}");
            }
            foreach (var group in p.Mm.Vmas.Where(v => v.Kind is VmaKind.VmaShmem or VmaKind.VmaSysv).GroupBy(v => (v.Kind, v.ShmemId)))
            {
                ulong key = group.Key.ShmemId ^ (group.Key.Kind == VmaKind.VmaSysv ? 1UL << 63 : 0);
                if (!owners.TryGetValue(key, out int owner))
                {
                    owners[key] = p.Pid;
                    continue;
                }
                byPid.TryGetValue(p.Ppid, out var parent);
                foreach (var vma in group)
                {
                    bool fromParent = parent is not null && parent.Mm.Vmas.Any(v => v.ShmemId == vma.ShmemId && v.Start == vma.Start && v.End == vma.End && v.FileOffset == vma.FileOffset);
                    if (!fromParent)
                        throw new UnsupportedResourceException(p.Pid, $"shared memory {vma.Start:x}-{vma.End:x} ({vma.Name}), also used by process {owner}", "memory shared between processes other than inherited from the parent at the same place");
                    vma.Inherited = true;
                }
                if (p.Mm.Shmem.FirstOrDefault(s => group.Key.Kind == VmaKind.VmaShmem && s.Id == group.Key.ShmemId) is { } copy)
                    p.Mm.Shmem.Remove(copy);
                if (p.Mm.SysvShm.FirstOrDefault(s => group.Key.Kind == VmaKind.VmaSysv && (ulong)s.Id == group.Key.ShmemId) is { } segment)
                    p.Mm.SysvShm.Remove(segment);
            }
        }
    }

    private static void SharedFiles(IReadOnlyList<ProcessImage> processes)
    {
        var byPid = processes.ToDictionary(p => p.Pid);
        // Only each process's own first fd of a description; its dups follow it (shares_description_with).
        var candidates = processes.SelectMany(p => p.Fds
                .Where(f => !f.HasSharesDescriptionWith && Array.IndexOf(Shareable, f.Kind) >= 0)
                .Select(f => (Process: p, Fd: f)))
            .GroupBy(c => (c.Fd.Kind, c.Fd.Description));
        ulong next = 1;
        foreach (var group in candidates)
        {
            var items = group.ToList();
            var assigned = new HashSet<int>();
            for (int i = 0; i < items.Count; i++)
            {
                if (assigned.Contains(i))
                    continue;
                var members = new List<int> { i };
                for (int j = i + 1; j < items.Count; j++)
                {
                    if (!assigned.Contains(j) && items[j].Process.Pid != items[i].Process.Pid
                        && ProcessFiles.SameDescription(items[i].Process.Pid, items[i].Fd.Fd, items[j].Process.Pid, items[j].Fd.Fd))
                        members.Add(j);
                }
                if (members.Count < 2)
                    continue;
                ulong id = next++;
                var recipe = items[i].Fd.Clone();
                int creator = PipeResolver.CommonAncestor([.. members.Select(m => items[m].Process.Pid)], byPid);
                byPid[creator].SharedFiles.Add(new SharedFile { Id = id, Recipe = recipe });
                foreach (int m in members)
                {
                    items[m].Fd.SharedFile = id;
                    assigned.Add(m);
                }
            }
        }
    }
}
