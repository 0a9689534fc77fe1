using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.AnonFds;

/// <summary>eventfd, timerfd, signalfd and epoll: their whole state is in /proc/PID/fdinfo.</summary>
public static class AnonFdDumper
{
    public static bool TryDump(int pid, FdImage image, string link)
    {
        string? kind = link["anon_inode:".Length..].Trim('[', ']') switch
        {
            "eventfd" => "eventfd",
            "timerfd" => "timerfd",
            "signalfd" => "signalfd",
            "eventpoll" => "eventpoll",
            "inotify" => "inotify",
            _ => null,
        };
        if (kind is null)
            return false;
        string info = ProcFs.ReadFdInfoText(pid, image.Fd);
        switch (kind)
        {
            case "eventfd":
                var e = AnonFdInfo.ParseEventFd(info);
                if (e.Count > uint.MaxValue)
                    throw new UnsupportedResourceException(pid, $"fd {image.Fd} (eventfd)", "an eventfd whose counter exceeds 2^32-1");
                image.Kind = FdKind.FdEventfd;
                image.Eventfd = new EventFdImage { Count = e.Count, Semaphore = e.Semaphore };
                break;
            case "timerfd":
                var t = AnonFdInfo.ParseTimerFd(info);
                image.Kind = FdKind.FdTimerfd;
                image.Timerfd = new TimerFdImage { ClockId = t.ClockId, Ticks = t.Ticks, SettimeFlags = t.SettimeFlags, ValueNs = t.ValueNs, IntervalNs = t.IntervalNs };
                break;
            case "inotify":
                int queued = ProcessFiles.QueuedBytes(pid, image.Fd);
                if (queued > 0)
                    throw new UnsupportedResourceException(pid, $"fd {image.Fd} (inotify)", $"an inotify descriptor with {queued} bytes of events not read yet");
                image.Kind = FdKind.FdInotify;
                foreach (var w in AnonFdInfo.ParseInotify(info))
                {
                    var (path, deleted) = FileHandles.Resolve(w.Device, w.HandleType, w.Handle)
                        ?? throw new UnsupportedResourceException(pid, $"fd {image.Fd} (inotify watch {w.Wd} on inode {w.Inode})", "an inotify watch on a file that cannot be opened by its handle");
                    image.Inotify.Add(new InotifyWatch
                    {
                        Wd = w.Wd, Path = path, Mask = w.Mask, Inode = w.Inode, Device = w.Device, HandleType = w.HandleType,
                        Handle = Google.Protobuf.ByteString.CopyFrom(w.Handle), Deleted = deleted,
                    });
                }
                break;
            case "signalfd":
                image.Kind = FdKind.FdSignalfd;
                image.Signalfd = new SignalFdImage { Mask = AnonFdInfo.ParseSignalFdMask(info) };
                break;
            default:
                image.Kind = FdKind.FdEpoll;
                image.Epoll = new EpollImage();
                foreach (var target in AnonFdInfo.ParseEpoll(info))
                    image.Epoll.Targets.Add(new EpollTarget { Fd = target.Fd, Events = target.Events, Data = target.Data, Inode = target.Inode });
                break;
        }
        return true;
    }

    /// <summary>
    /// An epoll set names its targets by fd number, but watches the file: one closed since (kept open
    /// through a dup) or whose number now holds another file is still watched. Each target is found
    /// among the process's fds (kcmp KCMP_EPOLL_TFD); one no fd of the process holds is refused.
    /// </summary>
    public static void ResolveEpollTargets(int pid, List<FdImage> fds)
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
}
