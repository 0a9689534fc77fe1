using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Files;

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
    /// An epoll set names its targets by fd number; each must still be that file in the fd table
    /// (a watched file whose fd was closed or reused cannot be registered again by number).
    /// </summary>
    public static void CheckEpollTargets(int pid, List<FdImage> fds)
    {
        foreach (var epoll in fds.Where(f => f.Kind == FdKind.FdEpoll))
        {
            foreach (var target in epoll.Epoll.Targets)
            {
                bool open = fds.Any(f => f.Fd == target.Fd)
                    && FileStat.TryGet($"/proc/{pid}/fd/{target.Fd}", out var st) && st.Inode == target.Inode;
                if (!open)
                    throw new UnsupportedResourceException(pid, $"fd {epoll.Fd} (epoll)", "an epoll set watching a file whose fd was closed or reused");
            }
        }
    }
}
