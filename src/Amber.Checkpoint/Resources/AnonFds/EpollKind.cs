using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.AnonFds;

/// <summary>
/// An epoll set: its targets (fd number, events, data), from /proc/PID/fdinfo, each matched to the
/// file it watches (<see cref="ResolveTargets"/>); made again after every file it watches
/// (<see cref="Depth"/>), each target added under its number.
/// </summary>
public sealed class EpollKind : IFileKind
{
    private const uint EpollOneShot = 1u << 30;
    private const uint PrivateEpollBits = (1u << 28) | (1u << 29) | (1u << 30) | (1u << 31); // EXCLUSIVE, WAKEUP, ONESHOT, ET
    private const uint AnyReadiness = 0x1 | 0x2 | 0x4 | 0x2000; // EPOLLIN, EPOLLPRI, EPOLLOUT, EPOLLRDHUP

    public IReadOnlyList<FdKind> Restores { get; } = [FdKind.FdEpoll];

    public bool TryDump(OpenFd fd, FdImage image)
    {
        if (fd.AnonKind != "eventpoll")
            return false;
        image.Kind = FdKind.FdEpoll;
        image.Epoll = new EpollImage();
        foreach (var target in AnonFdInfo.ParseEpoll(ProcFs.ReadFdInfoText(fd.Pid, fd.Fd)))
            image.Epoll.Targets.Add(new EpollTarget { Fd = target.Fd, Events = target.Events, Data = target.Data, Inode = target.Inode });
        return true;
    }

    /// <summary>
    /// An epoll set names its targets by fd number, but watches the file: one closed since (kept open
    /// through a dup) or whose number now holds another file is still watched. Each target is found
    /// among the process's fds (kcmp KCMP_EPOLL_TFD); one no fd of the process holds is refused.
    /// </summary>
    public static void ResolveTargets(int pid, List<FdImage> fds)
    {
        foreach (var epoll in fds.Where(f => f.Kind == FdKind.FdEpoll))
        {
            var seen = new Dictionary<int, int>();
            foreach (var target in epoll.Epoll.Targets)
            {
                // The same number may name several watched files (added, closed, reused, added again).
                int occurrence = seen[target.Fd] = seen.GetValueOrDefault(target.Fd, -1) + 1;
                bool Is(int fd) => ProcessFiles.IsEpollTarget(pid, fd, epoll.Fd, target.Fd, occurrence);
                if (fds.Any(f => f.Fd == target.Fd) && Is(target.Fd))
                    continue;
                var holder = fds.FirstOrDefault(f => f.Fd != epoll.Fd && Is(f.Fd))
                    ?? throw new UnsupportedResourceException(pid, $"fd {epoll.Fd} (epoll)", $"an epoll set watching a file (added as fd {target.Fd}) that no fd of the process holds any more");
                target.HeldAs = holder.Fd;
            }
        }
    }

    /// <summary>
    /// Which watches of each set are on its ready list (<see cref="EpollTarget.Ready"/>), where it
    /// matters — an edge-triggered watch not on it has reported its file's readiness already, and a
    /// restore's EPOLL_CTL_ADD would report it again — and can be read: the watches' data tell them
    /// apart, none is exclusive (EPOLL_CTL_MOD, which puts them back, refuses those).
    /// </summary>
    public static void ReadReadiness(int pid, List<FdImage> fds)
    {
        foreach (var epoll in fds.Where(f => f.Kind == FdKind.FdEpoll))
        {
            var targets = epoll.Epoll.Targets;
            if (!targets.Any(EdgeOnly) || targets.Any(t => EpollReadiness.Exclusive(t.Events)) || targets.Select(t => t.Data).Distinct().Count() != targets.Count)
                continue;
            try
            {
                var ready = EpollReadiness.Read(pid, epoll.Fd, [.. targets.Select(WatchOf)]);
                foreach (var target in targets)
                    target.Ready = ready.Contains(target.Data);
            }
            catch (KernelCallException e)
            {
                throw new CheckpointException($"process {pid}: fd {epoll.Fd} (epoll): its ready list could not be read: {e.Message}");
            }
            epoll.Epoll.ReadinessKnown = true;
        }
    }

    /// <summary>
    /// Once every queue is filled again (the last thing before the release): each set's ready list
    /// made what it was — the edge-triggered watches that had reported their file's readiness taken
    /// off it. Where that fails, the program may see one wakeup more (said, not fatal).
    /// </summary>
    public static void SettleReadiness(Restore.RestoreTree tree, List<string> warnings)
    {
        foreach (var image in tree.Images.Where(i => !i.Zombie && !i.SharesFdTable))
        {
            foreach (var epoll in image.Fds.Where(f => f.Kind == FdKind.FdEpoll && f.Epoll.ReadinessKnown && f.Epoll.Targets.Any(t => EdgeOnly(t) && !t.Ready)))
            {
                var targets = epoll.Epoll.Targets;
                var rearm = targets.Where(t => EdgeOnly(t) ? t.Ready : EpollReadiness.OneShot(t.Events) && (t.Events & ~PrivateEpollBits) != 0);
                try
                {
                    EpollReadiness.Settle(tree.HostId(image.Pid), epoll.Fd, targets.Count, [.. rearm.Select(WatchOf)]);
                }
                catch (KernelCallException e)
                {
                    warnings.Add($"process {image.Pid}: fd {epoll.Fd} (epoll): its ready list could not be made what it was ({e.Message}): an edge-triggered watch may report once more");
                }
            }
        }
    }

    /// <summary>Edge-triggered and not one-shot: what a restore's EPOLL_CTL_ADD would report again.</summary>
    private static bool EdgeOnly(EpollTarget t) => EpollReadiness.EdgeTriggered(t.Events) && !EpollReadiness.OneShot(t.Events);

    private static EpollReadiness.Watch WatchOf(EpollTarget t) => new(t.Fd, t.HasHeldAs ? t.HeldAs : t.Fd, t.Events, t.Data);

    /// <summary>0 for an fd that is no epoll set; 1 + the deepest epoll set it watches for one (sets nest, never in a loop).</summary>
    public static int Depth(ProcessImage image, int fd, int level = 0)
    {
        var epoll = image.Fds.FirstOrDefault(f => f.Fd == fd && f.Kind == FdKind.FdEpoll);
        if (epoll is null || level > 8)
            return 0;
        return 1 + epoll.Epoll.Targets.Select(t => Depth(image, t.HasHeldAs ? t.HeldAs : t.Fd, level + 1)).DefaultIfEmpty(0).Max();
    }

    /// <summary>
    /// Each target added under its number. A file watched under a number it no longer has (its fd
    /// closed since, or reused) is put at that number for the add, then whatever is there comes back.
    /// </summary>
    public void Restore(FdRestore restore, FdImage fd)
    {
        var calls = restore.Calls;
        int first = calls.EpollCreate();
        int created = calls.DupAbove(first, restore.Floor); // the lowest free number may be one a target needs
        calls.Close(first);
        // A one-shot watch that fired and was not rearmed keeps no event bit, which no ADD or MOD can
        // set (both add EPOLLERR|EPOLLHUP): it is added waiting for what its file is ready for now and
        // made to fire once, alone in the set. One whose file is ready for nothing is set as close as can be.
        var disarmed = fd.Epoll.Targets.Where(t => (t.Events & ~PrivateEpollBits) == 0 && (t.Events & EpollOneShot) != 0).ToList();
        foreach (var target in disarmed)
            WithTargetAt(restore, target, () => calls.EpollAdd(created, target.Fd, target.Events | AnyReadiness, target.Data));
        if (disarmed.Count > 0 && calls.EpollTakeReady(created, disarmed.Count) < disarmed.Count)
        {
            foreach (var target in disarmed)
                WithTargetAt(restore, target, () => calls.EpollModify(created, target.Fd, target.Events, target.Data));
        }
        foreach (var target in fd.Epoll.Targets.Except(disarmed))
            WithTargetAt(restore, target, () => calls.EpollAdd(created, target.Fd, target.Events, target.Data));
        restore.Place(fd, created);
    }

    /// <summary>
    /// A watch is made under the number its file was added with: a file that no longer has that
    /// number (its fd closed since, or reused) is put there for the call, then whatever is there comes back.
    /// </summary>
    private static void WithTargetAt(FdRestore restore, EpollTarget target, Action call)
    {
        if (!target.HasHeldAs)
        {
            call();
            return;
        }
        var calls = restore.Calls;
        var there = restore.Image.Fds.FirstOrDefault(f => f.Fd == target.Fd);
        int aside = there is not null && calls.IsOpen(target.Fd) ? calls.DupAbove(target.Fd, restore.Floor) : -1;
        calls.Dup3(target.HeldAs, target.Fd, closeOnExec: true);
        call();
        if (aside >= 0)
        {
            calls.Dup3(aside, target.Fd, there!.CloseOnExec);
            calls.Close(aside);
        }
        else
        {
            calls.Close(target.Fd);
        }
    }
}
