using Amber.Checkpoint.Freeze;
using Amber.Image.Schema;
using Amber.Kernel.Processes;

namespace Amber.Checkpoint.Resources.Isolation;

/// <summary>
/// The ids an image keeps of the processes, threads, groups and sessions it saves. Processes in a PID
/// namespace of their own keep theirs in it (the last of /proc/PID/status's NSpid, NSpgid, NSsid),
/// which a restore gives them again in a new namespace, whatever ids the host has in use then; others
/// keep amber's, the same thing. A checkpoint works with amber's ids throughout (it reads and traces
/// the processes through them) and writes the image's: its file names as it goes, every id in the
/// images and the manifest once they are complete (<see cref="Translate(ProcessImage)"/>). Read under
/// the freeze, when no process or thread can come or go.
/// </summary>
internal sealed class ImagePids
{
    // amber's id → the image's; null: the same.
    private readonly Dictionary<int, int>? _inner;
    private readonly Dictionary<int, (int Pgid, int Sid)> _groups = [];

    // amber's id of a member's process group or session → the image's.
    private readonly Dictionary<int, int> _groupIds = [];

    private ImagePids(Dictionary<int, int>? inner) => _inner = inner;

    /// <summary>Processes in amber's PID namespace: their ids are the image's.</summary>
    public static ImagePids Same { get; } = new(null);

    /// <summary>Whether the image's ids are not amber's (a PID namespace of their own).</summary>
    public bool Own => _inner is not null;

    /// <summary>Every member's and every thread's id in their PID namespace, with each process's group and session there.</summary>
    public static ImagePids Read(FrozenGroup frozen)
    {
        var pids = new ImagePids([]);
        foreach (var member in frozen.Members)
        {
            var status = Kernel.Proc.ProcFs.ReadStatus(member.Pid);
            pids._inner![member.Pid] = Last(status.NsPids, member.Pid);
            pids._groups[member.Pid] = (Last(status.NsPgids, 0), Last(status.NsSids, 0));
            var stat = Kernel.Proc.ProcFs.ReadStat(member.Pid);
            pids._groupIds[stat.ProcessGroup] = pids._groups[member.Pid].Pgid;
            pids._groupIds[stat.Session] = pids._groups[member.Pid].Sid;
            foreach (var thread in member.Frozen?.Threads.Skip(1) ?? [])
                pids._inner[thread.Tid] = Namespaces.InnerPid(thread.Tid);
        }
        return pids;
    }

    private static int Last(int[] ids, int otherwise) => ids is [.., int last] ? last : otherwise;

    /// <summary>
    /// The image's id of process or thread <paramref name="pid"/> (amber's id); 0 for one outside their
    /// namespace (the parent of its PID 1), which has none there.
    /// </summary>
    public int Of(int pid) => _inner is null || pid == 0 ? pid : _inner.GetValueOrDefault(pid);

    /// <summary>
    /// Refuses an fd on a file of amber's /proc named by a PID (/proc/self/status is /proc/PID/status),
    /// when the processes have a PID namespace of their own but not a procfs of their own on /proc: the
    /// PID is the host's, which a restore into a new PID namespace changes, so the path would name
    /// another process's file, or none.
    /// </summary>
    public void CheckProcPaths(IEnumerable<ProcessImage> images, bool ownProcfs)
    {
        if (_inner is null || ownProcfs)
            return;
        foreach (var image in images)
        {
            foreach (var fd in image.Fds.Where(f => f.Kind is FdKind.FdRegular or FdKind.FdDirectory && NamedByPid(f.Path)))
                throw new UnsupportedResourceException(image.Pid, $"fd {fd.Fd} ({fd.Path})",
                    "a file of the host's /proc named by a PID, which a restore into a new PID namespace changes (a procfs of its own on /proc keeps it: unshare --mount-proc)");
        }
    }

    private static bool NamedByPid(string path) =>
        path.StartsWith("/proc/", StringComparison.Ordinal) && path.Length > 6 && char.IsAsciiDigit(path[6]);

    /// <summary>Every id in <paramref name="image"/> (a process's, a zombie's or the forest's), from amber's to the image's.</summary>
    public void Translate(ProcessImage image)
    {
        if (_inner is null)
            return;
        if (image.Pid != 0) // not the forest
        {
            // A group or session may have no process left that has its id (a placeholder makes it
            // again): its id in the namespace comes from the process's status, not from a member.
            (image.Pgid, image.Sid) = _groups[image.Pid];
            image.Pid = Of(image.Pid);
            image.Ppid = Of(image.Ppid);
        }
        foreach (var thread in image.Threads)
            thread.Tid = Of(thread.Tid);
        foreach (var timer in image.PosixTimers.Where(t => t.NotifyTid != 0))
            timer.NotifyTid = Of(timer.NotifyTid);
        foreach (var deleted in image.DeletedFiles)
            deleted.PagesOf = Of(deleted.PagesOf);
        if (image.Mm is { } mm)
        {
            foreach (var shmem in mm.Shmem)
                shmem.PagesOf = Of(shmem.PagesOf);
            foreach (var segment in mm.SysvShm)
                segment.PagesOf = Of(segment.PagesOf);
        }
        foreach (var fd in image.Fds)
            Translate(fd);
        foreach (var shared in image.SharedFiles)
            Translate(shared.Recipe);
        foreach (var pair in image.SocketPairs)
            Translate(pair.FirstQueue.Concat(pair.SecondQueue));
        foreach (var pty in image.Ptys)
        {
            pty.Session = _groupIds.GetValueOrDefault(pty.Session);
            pty.ForegroundGroup = _groupIds.GetValueOrDefault(pty.ForegroundGroup);
        }
    }

    /// <summary>The ids the manifest lists, from amber's to the image's.</summary>
    public void Translate(Manifest manifest)
    {
        if (_inner is null)
            return;
        manifest.RootPid = Of(manifest.RootPid);
        var pids = manifest.Pids.Select(Of).ToList();
        manifest.Pids.Clear();
        manifest.Pids.AddRange(pids);
        var roots = manifest.TreeRoots.Select(Of).ToList();
        manifest.TreeRoots.Clear();
        manifest.TreeRoots.AddRange(roots);
    }

    private void Translate(FdImage? fd)
    {
        if (fd?.Socket is { } socket)
            Translate(socket.Queue);
    }

    /// <summary>Descriptors in flight name the process that holds the same open file.</summary>
    private void Translate(IEnumerable<SocketMessage> queue)
    {
        foreach (var inFlight in queue.SelectMany(m => m.Fds))
        {
            inFlight.HolderPid = Of(inFlight.HolderPid);
            Translate(inFlight.File);
        }
    }
}
