using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// Puts back the fd table inside the new process. On entry it holds amber's stdio at 0-2 and the
/// inherited fds at 3..3+k-1 (see <see cref="HuskProcess"/>). Those are first moved above every
/// saved fd number, the low range is cleared, the saved fds are opened in ascending order (so the
/// temporary fd openat returns never collides with a saved number still to come), then the
/// inherited ones are duplicated into place and their temporary copies closed.
/// </summary>
public sealed class FileRestorer(
    RemoteCalls calls, ProcessImage image, IReadOnlyList<(int Fd, int Source)> inherits,
    IReadOnlyDictionary<ulong, int> memfds, RestoreTree tree, DeletedFileRestorer deletedFiles)
{
    private const int DefaultPipeCapacity = 65536; // a FIFO's, as a pipe's (PipeMaker)
    private const int OpenFlagsToDrop = OpenFlags.Create | OpenFlags.Exclusive | OpenFlags.Truncate;

    public List<string> Warnings { get; } = [];

    /// <summary>The lowest fd number above every saved fd and every inherited slot: temporaries live from here.</summary>
    public static int Floor(ProcessImage image, int inheritCount)
    {
        int maxFd = image.Fds.Count == 0 ? 2 : Math.Max(2, image.Fds.Max(f => f.Fd));
        return Math.Max(maxFd, 2 + inheritCount) + 1;
    }

    public void Restore()
    {
        int floor = Floor(image, inherits.Count);
        var temporary = new Dictionary<int, int>();
        for (int i = 0; i < inherits.Count; i++)
            temporary[inherits[i].Fd] = calls.DupAbove(3 + i, floor);
        calls.CloseRange(0, (uint)(floor - 1));
        var pipeEnds = CreatePipes(floor);

        // epoll fds last: what they watch must exist first, an epoll set it watches too.
        var ordered = image.Fds.OrderBy(f => EpollDepth(f.HasSharesDescriptionWith ? f.SharesDescriptionWith : f.Fd, 0)).ThenBy(f => f.Fd);
        foreach (var fd in ordered)
        {
            if (temporary.TryGetValue(fd.Fd, out int source))
            {
                calls.Dup3(source, fd.Fd, fd.CloseOnExec);
                continue;
            }
            if (fd.HasSharesDescriptionWith)
            {
                calls.Dup3(fd.SharesDescriptionWith, fd.Fd, fd.CloseOnExec);
                continue;
            }
            if (fd.SharedFile != 0)
            {
                // Opened once, by the common ancestor of every process that shares it.
                calls.Dup3(tree.FileSlots[fd.SharedFile], fd.Fd, fd.CloseOnExec);
                continue;
            }
            switch (fd.Kind)
            {
                case FdKind.FdPipe:
                    // A pipe of this process alone, or one shared in the tree, inherited in a slot.
                    int end = pipeEnds.TryGetValue((fd.PipeId, fd.PipeWriteEnd), out int own) ? own : tree.Slots[(fd.PipeId, fd.PipeWriteEnd)];
                    if (fd.PipeReopened)
                    {
                        Place(fd, PipeMaker.Reopen(calls, end, fd));
                        break;
                    }
                    calls.SetStatusFlags(end, (int)fd.Flags);
                    calls.Dup3(end, fd.Fd, fd.CloseOnExec);
                    break;
                case FdKind.FdRegular:
                case FdKind.FdDirectory:
                case FdKind.FdDevNull:
                case FdKind.FdCharacterDevice:
                case FdKind.FdDeletedFile:
                case FdKind.FdSocket:
                    int unnamed = deletedFiles.TakeUnnamed(fd);
                    Place(fd, unnamed >= 0 ? unnamed : CreateDescription(calls, fd, deletedFiles.PathOf));
                    break;
                case FdKind.FdFifo:
                    RestoreFifo(fd, floor);
                    break;
                case FdKind.FdSocketPair:
                    int pairEnd = tree.PairSlots[(fd.SocketPair, fd.SocketPairSecond)];
                    calls.SetStatusFlags(pairEnd, (int)fd.Flags);
                    calls.Dup3(pairEnd, fd.Fd, fd.CloseOnExec);
                    break;
                case FdKind.FdMemfd:
                    calls.SetStatusFlags(memfds[fd.ShmemId], (int)fd.Flags);
                    calls.Dup3(memfds[fd.ShmemId], fd.Fd, fd.CloseOnExec);
                    if (fd.Offset != 0)
                        calls.Seek(fd.Fd, fd.Offset);
                    break;
                case FdKind.FdEventfd:
                    Place(fd, calls.EventFd((uint)fd.Eventfd.Count, fd.Eventfd.Semaphore, (int)fd.Flags));
                    break;
                case FdKind.FdTimerfd:
                    RestoreTimerFd(fd);
                    break;
                case FdKind.FdInotify:
                    Place(fd, RestoreInotify(fd));
                    break;
                case FdKind.FdSignalfd:
                    Place(fd, calls.SignalFd(fd.Signalfd.Mask, (int)fd.Flags));
                    break;
                case FdKind.FdEpoll:
                    RestoreEpoll(fd, floor);
                    break;
                case FdKind.FdExternal:
                    Open(fd, "/dev/null", (int)fd.Flags & OpenFlags.AccessMode);
                    Warnings.Add($"fd {fd.Fd} was {fd.Description} from outside the process; it now reads and writes /dev/null (pass --inherit-fd {fd.Fd} to hand over one of amber's)");
                    break;
                default:
                    throw new CheckpointException($"fd {fd.Fd}: unknown kind {fd.Kind} in the image");
            }
        }
        foreach (int t in temporary.Values.Concat(pipeEnds.Values).Concat(memfds.Values))
            calls.Close(t);
        foreach (var (target, _) in inherits.Where(i => image.Fds.All(f => f.Fd != i.Fd)))
            Warnings.Add($"--inherit-fd {target}: the process had no fd {target}; ignored");
    }

    /// <summary>Each saved pipe of this process alone, new, above the saved fd numbers, holding the bytes it held.</summary>
    private Dictionary<(ulong Id, bool WriteEnd), int> CreatePipes(int floor)
    {
        var ends = new Dictionary<(ulong, bool), int>();
        foreach (var pipe in image.Pipes)
        {
            var (read, write) = PipeMaker.Make(calls, image.Pid, pipe, floor);
            if (read >= 0)
                ends[(pipe.Id, false)] = read;
            if (write >= 0)
                ends[(pipe.Id, true)] = write;
        }
        return ends;
    }

    /// <summary>
    /// A new open file description as the saved fd had it (path, flags, offset; or a socket), at
    /// whatever fd number the kernel gives: the caller moves it to its place. A deleted file is
    /// opened where <paramref name="deletedPath"/> says it is being restored.
    /// </summary>
    public static int CreateDescription(RemoteCalls calls, FdImage fd, Func<ulong, string> deletedPath, RestoreTree? tree = null)
    {
        if (fd.Kind == FdKind.FdSocket)
            return SocketRestorer.Create(calls, fd);
        if (fd.Kind == FdKind.FdPipe && tree is not null) // an end opened again, shared: from the pipe's slot
            return PipeMaker.Reopen(calls, tree.Slots[(fd.PipeId, fd.PipeWriteEnd)], fd);
        string path = fd.Kind == FdKind.FdDeletedFile ? deletedPath(fd.DeletedFile) : fd.Path;
        int flags = (int)fd.Flags & ~OpenFlagsToDrop;
        if (fd.Kind is FdKind.FdRegular or FdKind.FdDeletedFile)
            flags &= ~OpenFlags.TmpFile; // made with O_TMPFILE: it is a file now, opened by name
        int created = calls.OpenAt(path, flags | OpenFlags.CloseOnExec | OpenFlags.NoCtty);
        if (fd.Kind is FdKind.FdRegular or FdKind.FdDeletedFile && fd.Offset != 0 && (flags & OpenFlags.Path) == 0)
            calls.Seek(created, fd.Offset);
        return created;
    }

    private void Open(FdImage fd, string path, int flags) =>
        Place(fd, calls.OpenAt(path, (flags & ~OpenFlagsToDrop) | OpenFlags.CloseOnExec | OpenFlags.NoCtty));

    private void RestoreTimerFd(FdImage fd)
    {
        var t = fd.Timerfd;
        int created = calls.TimerFd(t.ClockId, (int)fd.Flags);
        // A periodic timer whose expirations wait to be read is not running; it runs again from the read.
        long value = t.ValueNs == 0 && t.IntervalNs != 0 ? t.IntervalNs : t.ValueNs;
        if (value != 0 || t.IntervalNs != 0)
            calls.ArmTimerFd(created, t.IntervalNs, value);
        if (t.Ticks != 0)
            calls.SetTimerFdTicks(created, t.Ticks);
        Place(fd, created);
    }

    /// <summary>
    /// A FIFO is opened through a read-write helper first: opening one end alone would block until
    /// the other end is opened. The first process restored refills the queued bytes through it.
    /// </summary>
    private void RestoreFifo(FdImage fd, int floor)
    {
        int first = calls.OpenAt(fd.Path, OpenFlags.ReadWrite | OpenFlags.NonBlock | OpenFlags.CloseOnExec);
        int helper = calls.DupAbove(first, floor);
        calls.Close(first);
        if (tree.FilledFifos.Add(fd.PipeId) && tree.Fifos[fd.PipeId] is { } fifo)
        {
            if (fifo.Capacity != DefaultPipeCapacity)
                calls.SetPipeSize(helper, (int)fifo.Capacity);
            if (!fifo.Data.IsEmpty)
                ProcessFiles.WriteThrough(image.Pid, helper, fifo.Data.Span);
        }
        Place(fd, calls.OpenAt(fd.Path, ((int)fd.Flags & ~OpenFlagsToDrop) | OpenFlags.CloseOnExec));
        calls.Close(helper);
    }

    /// <summary>
    /// Watches are added again in their order. A watch descriptor is the next free number, so numbers
    /// of watches removed since are skipped by adding and removing a watch until the saved one comes.
    /// Each goes on the file it watched (<see cref="WatchTarget"/>), named to the process through a
    /// /proc fd path (IN_DONT_FOLLOW would watch that link itself: it is left out).
    /// </summary>
    private int RestoreInotify(FdImage fd)
    {
        const int MaxSkip = 100000;
        const uint DontFollow = 0x02000000;
        int created = calls.InotifyInit((int)fd.Flags);
        foreach (var watch in fd.Inotify.OrderBy(w => w.Wd))
        {
            var (path, held) = WatchTarget(watch);
            using (held)
            {
                for (int tries = 0; ; tries++)
                {
                    int wd = calls.InotifyAddWatch(created, path, watch.Mask & ~DontFollow);
                    if (wd == watch.Wd)
                        break;
                    if (wd > watch.Wd || tries == MaxSkip)
                        throw new CheckpointException($"fd {fd.Fd}: inotify watch {watch.Wd} on {watch.Path} came back as {wd}");
                    calls.InotifyRemoveWatch(created, wd);
                }
            }
        }
        return created;
    }

    /// <summary>
    /// The file a watch was on: a deleted file the restore makes again; else the very inode, opened by
    /// amber through its file handle (wherever it was renamed or moved since; amber's fd, which the
    /// process, still root, reaches through /proc); else, on another machine or once the file is
    /// gone, what its path names now (<see cref="ImageValidator"/> says so beforehand).
    /// </summary>
    private (string Path, HeldFile? Held) WatchTarget(InotifyWatch watch)
    {
        if (watch.Deleted)
            return (deletedFiles.PathOf(watch.Inode), null);
        if (!watch.Handle.IsEmpty && FileHandles.Open(watch.Device, watch.HandleType, watch.Handle.Span) is { } held)
            return ($"/proc/{Environment.ProcessId}/fd/{held.Fd}", held);
        return (watch.Path, null);
    }

    /// <summary>0 for an fd that is no epoll set; 1 + the deepest epoll set it watches for one (sets nest, never in a loop).</summary>
    private int EpollDepth(int fd, int level)
    {
        var epoll = image.Fds.FirstOrDefault(f => f.Fd == fd && f.Kind == FdKind.FdEpoll);
        if (epoll is null || level > 8)
            return 0;
        return 1 + epoll.Epoll.Targets.Select(t => EpollDepth(t.HasHeldAs ? t.HeldAs : t.Fd, level + 1)).DefaultIfEmpty(0).Max();
    }

    /// <summary>
    /// Each target added under its number. A file watched under a number it no longer has (its fd
    /// closed since, or reused) is put at that number for the add, then whatever is there comes back.
    /// </summary>
    private void RestoreEpoll(FdImage fd, int floor)
    {
        int first = calls.EpollCreate();
        int created = calls.DupAbove(first, floor); // the lowest free number may be one a target needs
        calls.Close(first);
        // A one-shot watch that fired and was not rearmed keeps no event bit, which no ADD or MOD can
        // set (both add EPOLLERR|EPOLLHUP): it is added waiting for what its file is ready for now and
        // made to fire once, alone in the set. One whose file is ready for nothing is set as close as can be.
        var disarmed = fd.Epoll.Targets.Where(t => (t.Events & ~PrivateEpollBits) == 0 && (t.Events & EpollOneShot) != 0).ToList();
        foreach (var target in disarmed)
            AddEpollTarget(created, target, target.Events | AnyReadiness, floor);
        if (disarmed.Count > 0 && calls.EpollTakeReady(created, disarmed.Count) < disarmed.Count)
        {
            foreach (var target in disarmed)
                WithTargetAt(target, floor, () => calls.EpollModify(created, target.Fd, target.Events, target.Data));
        }
        foreach (var target in fd.Epoll.Targets.Except(disarmed))
            AddEpollTarget(created, target, target.Events, floor);
        Place(fd, created);
    }

    private const uint EpollOneShot = 1u << 30;
    private const uint PrivateEpollBits = (1u << 28) | (1u << 29) | (1u << 30) | (1u << 31); // EXCLUSIVE, WAKEUP, ONESHOT, ET
    private const uint AnyReadiness = 0x1 | 0x2 | 0x4 | 0x2000; // EPOLLIN, EPOLLPRI, EPOLLOUT, EPOLLRDHUP

    private void AddEpollTarget(int epoll, EpollTarget target, uint events, int floor) =>
        WithTargetAt(target, floor, () => calls.EpollAdd(epoll, target.Fd, events, target.Data));

    /// <summary>
    /// A watch is made under the number its file was added with: a file that no longer has that
    /// number (its fd closed since, or reused) is put there for the call, then whatever is there comes back.
    /// </summary>
    private void WithTargetAt(EpollTarget target, int floor, Action call)
    {
        if (!target.HasHeldAs)
        {
            call();
            return;
        }
        var there = image.Fds.FirstOrDefault(f => f.Fd == target.Fd);
        int aside = there is not null && calls.IsOpen(target.Fd) ? calls.DupAbove(target.Fd, floor) : -1;
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

    /// <summary>Moves a newly created fd to its saved number with its close-on-exec flag.</summary>
    private void Place(FdImage fd, int created)
    {
        if (created == fd.Fd)
        {
            calls.SetCloseOnExec(fd.Fd, fd.CloseOnExec);
            return;
        }
        calls.Dup3(created, fd.Fd, fd.CloseOnExec);
        calls.Close(created);
    }
}
