using Amber.Checkpoint.Resources.DeletedFiles;
using Amber.Checkpoint.Resources.Files;
using Amber.Checkpoint.Resources.Memory;
using Amber.Checkpoint.Resources.Pipes;
using Amber.Checkpoint.Resources.Sockets;
using Amber.Checkpoint.Restore;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Resources;

/// <summary>
/// What processes of a tree share, decided once every process is dumped:
/// <list type="bullet">
/// <item>Shared memory and deleted files (<see cref="SharedObjects"/>): a mapping a child inherited
/// from its parent at the same place is kept from the parent at restore (Vma.inherited); an object
/// several processes need to map or hold is recreated once, by their lowest common ancestor, and
/// handed down in a slot; an object one process uses stays with it.</item>
/// <item>Open files and sockets shared by several processes — one offset, one set of flags — are
/// opened once at restore by their lowest common ancestor and inherited by the others
/// (<see cref="ProcessImage.SharedFiles"/>), as it was when they forked.</item>
/// </list>
/// </summary>
public static class Sharing
{
    private static readonly FdKind[] Shareable =
        [FdKind.FdRegular, FdKind.FdDirectory, FdKind.FdDevNull, FdKind.FdCharacterDevice, FdKind.FdSocket, FdKind.FdDeletedFile, FdKind.FdPtySlave];

    public static List<string> Resolve(IReadOnlyList<ProcessImage> processes)
    {
        CheckFdTables(processes);
        SharedObjects(processes);
        SharedFiles(processes);
        return [];
    }

    /// <summary>
    /// A process shares an fd table only with its parent (CLONE_FILES), or with none: one shared with
    /// a process that is not its parent (its parent unshared since) could not be made again.
    /// </summary>
    private static void CheckFdTables(IReadOnlyList<ProcessImage> processes)
    {
        var owners = new List<ProcessImage>(); // one process of each fd table, by the first that has it
        foreach (var p in processes.Where(p => !p.Zombie && p.Pid != 0))
        {
            if (p.SharesFdTable)
                continue;
            if (owners.FirstOrDefault(o => ProcessFiles.ShareFdTable(o.Pid, p.Pid)) is { } other)
                throw new UnsupportedResourceException(p.Pid, "its fd table", $"an fd table shared with process {other.Pid}, which is not its parent");
            owners.Add(p);
        }
    }

    /// <summary>Places every shared memory object and deleted file where the restore recreates it (see the class summary).</summary>
    private static void SharedObjects(IReadOnlyList<ProcessImage> processes)
    {
        var byPid = processes.ToDictionary(p => p.Pid);
        foreach (var p in processes) // parents before children
        {
            if (!byPid.TryGetValue(p.Ppid, out var parent))
                continue;
            foreach (var vma in p.Mm.Vmas.Where(v => ObjectOf(v) is not null && v.Shared))
            {
                // A private mapping is never inherited: the child's own copy-on-write pages are in its image.
                vma.Inherited = parent.Mm.Vmas.Any(v => v.Kind == vma.Kind && v.ShmemId == vma.ShmemId && v.Start == vma.Start
                    && v.End == vma.End && v.FileOffset == vma.FileOffset && v.Shared == vma.Shared);
            }
        }
        foreach (var saver in processes)
        {
            foreach (var shmem in saver.Mm.Shmem.ToList())
            {
                var needers = Needers(processes, ObjectKind.Shmem, shmem.Id);
                int mappings = needers.Sum(n => n.Mm.Vmas.Count(v => v.Kind == VmaKind.VmaShmem && v.ShmemId == shmem.Id && !v.Inherited));
                // Shared anonymous memory has no name to map it by twice: it comes back as an fd too.
                shmem.InSlot = needers.Count > 1 || (shmem.Anonymous && mappings > 1);
                var owner = Owner(needers, saver, byPid);
                if (owner != saver)
                {
                    saver.Mm.Shmem.Remove(shmem);
                    shmem.PagesOf = saver.Pid;
                    owner.Mm.Shmem.Add(shmem);
                }
            }
            foreach (var segment in saver.Mm.SysvShm.ToList())
            {
                // amber recreates a segment by its id: the common ancestor of those attaching it, before any of them.
                var owner = Owner(Needers(processes, ObjectKind.Sysv, (ulong)segment.Id), saver, byPid);
                if (owner != saver)
                {
                    saver.Mm.SysvShm.Remove(segment);
                    segment.PagesOf = saver.Pid;
                    owner.Mm.SysvShm.Add(segment);
                }
            }
            foreach (var deleted in saver.DeletedFiles.ToList())
            {
                var needers = Needers(processes, ObjectKind.Deleted, deleted.Id);
                deleted.InSlot = needers.Count > 1;
                var owner = Owner(needers, saver, byPid);
                if (owner != saver)
                {
                    saver.DeletedFiles.Remove(deleted);
                    deleted.PagesOf = saver.Pid;
                    owner.DeletedFiles.Add(deleted);
                }
            }
        }
    }

    /// <summary>The processes that map an object themselves (not inherited), hold an fd on it, or work in it (a deleted directory).</summary>
    private static List<ProcessImage> Needers(IReadOnlyList<ProcessImage> processes, ObjectKind kind, ulong id) =>
        [.. processes.Where(p => p.Mm.Vmas.Any(v => !v.Inherited && v.ShmemId == id && ObjectOf(v) == kind)
            || (kind == ObjectKind.Deleted && p.CwdDeleted == id)
            || (kind == ObjectKind.Deleted && p.Fds.Any(f => f.Kind == FdKind.FdInotify && f.Inotify.Any(w => w.Deleted && w.Inode == id)))
            || p.Fds.Any(f => (kind == ObjectKind.Shmem && f.Kind == FdKind.FdMemfd && f.ShmemId == id)
                || (kind == ObjectKind.Deleted && f.Kind == FdKind.FdDeletedFile && f.DeletedFile == id)))];

    /// <summary>Where an object is recreated: the one process that needs it, or the common ancestor of several.</summary>
    private static ProcessImage Owner(List<ProcessImage> needers, ProcessImage saver, Dictionary<int, ProcessImage> byPid) =>
        needers.Count switch
        {
            0 => saver,
            1 => needers[0],
            _ => byPid[ProcessTree.CommonAncestor([.. needers.Select(n => n.Pid)], byPid)],
        };

    private static ObjectKind? ObjectOf(Vma vma) => vma.Kind switch
    {
        VmaKind.VmaShmem => ObjectKind.Shmem,
        VmaKind.VmaSysv => ObjectKind.Sysv,
        VmaKind.VmaDeletedFile => ObjectKind.Deleted,
        _ => null,
    };

    /// <summary>An id no shared file of the tree has yet (pipes' reopened ends take theirs first, <see cref="PipeResolver"/>).</summary>
    internal static ulong NextSharedFileId(IEnumerable<ProcessImage> processes) =>
        processes.SelectMany(p => p.SharedFiles).Select(f => f.Id).DefaultIfEmpty(0UL).Max() + 1;

    private static void SharedFiles(IReadOnlyList<ProcessImage> processes)
    {
        var byPid = processes.ToDictionary(p => p.Pid);
        // Only each process's own first fd of a description; its dups follow it (shares_description_with).
        var candidates = processes.SelectMany(p => p.Fds
                .Where(f => !f.HasSharesDescriptionWith && Array.IndexOf(Shareable, f.Kind) >= 0)
                .Select(f => (Process: p, Fd: f)))
            .GroupBy(c => (c.Fd.Kind, c.Fd.Description));
        ulong next = NextSharedFileId(processes);
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
                int creator = ProcessTree.CommonAncestor([.. members.Select(m => items[m].Process.Pid)], byPid);
                byPid[creator].SharedFiles.Add(new SharedFile { Id = id, Recipe = recipe });
                foreach (int m in members)
                {
                    items[m].Fd.SharedFile = id;
                    assigned.Add(m);
                }
            }
        }
    }

    /// <summary>
    /// The open file a shared fd is made from (<see cref="ProcessImage.SharedFiles"/>), by the process
    /// that makes it for those below it: a file opened again by its path (or a deleted file's), a
    /// socket, a pipe end opened again from its slot, or a pseudo-terminal's slave.
    /// </summary>
    public static int CreateFile(RemoteCalls calls, FdImage recipe, DeletedFileRestorer deletedFiles, RestoreTree tree) => recipe.Kind switch
    {
        FdKind.FdSocket => SocketRestorer.Create(calls, recipe, tree.TcpRepairs),
        FdKind.FdPipe => PipeMaker.Reopen(calls, tree.Slots[(recipe.PipeId, recipe.PipeWriteEnd)], recipe),
        FdKind.FdDeletedFile => PathFileKind.Open(calls, recipe, deletedFiles.PathOf(recipe.DeletedFile)),
        FdKind.FdPtySlave => Terminals.PtyKind.OpenSlave(calls, recipe, tree),
        _ => PathFileKind.Open(calls, recipe, recipe.Path),
    };
}
