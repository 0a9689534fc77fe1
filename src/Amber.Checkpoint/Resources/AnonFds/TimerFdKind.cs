using Amber.Image.Schema;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.AnonFds;

/// <summary>A timerfd: its clock, setting and expirations not read yet, from /proc/PID/fdinfo; armed again with them.</summary>
public sealed class TimerFdKind : IFileKind
{
    public IReadOnlyList<FdKind> Restores { get; } = [FdKind.FdTimerfd];

    public bool TryDump(OpenFd fd, FdImage image)
    {
        if (fd.AnonKind != "timerfd")
            return false;
        var t = AnonFdInfo.ParseTimerFd(ProcFs.ReadFdInfoText(fd.Pid, fd.Fd));
        image.Kind = FdKind.FdTimerfd;
        image.Timerfd = new TimerFdImage { ClockId = t.ClockId, Ticks = t.Ticks, SettimeFlags = t.SettimeFlags, ValueNs = t.ValueNs, IntervalNs = t.IntervalNs };
        return true;
    }

    public void Restore(FdRestore restore, FdImage fd)
    {
        var (calls, t) = (restore.Calls, fd.Timerfd);
        int created = calls.TimerFd(t.ClockId, (int)fd.Flags);
        // A periodic timer whose expirations wait to be read is not running; it runs again from the read.
        long value = t.ValueNs == 0 && t.IntervalNs != 0 ? t.IntervalNs : t.ValueNs;
        if (value != 0 || t.IntervalNs != 0)
            calls.ArmTimerFd(created, t.IntervalNs, value);
        if (t.Ticks != 0)
            calls.SetTimerFdTicks(created, t.Ticks);
        restore.Place(fd, created);
    }
}
