using Amber.Image.Schema;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Timers;

/// <summary>
/// POSIX timers (timer_create: their ids, clocks, notification and setting) and interval timers
/// (setitimer: real, virtual, profiling), asked of the process and armed in it again. A timerfd is
/// an open file (AnonFds/TimerFdKind.cs).
/// </summary>
public static class ProcessTimers
{
    public static void Dump(RemoteCalls calls, int pid, ProcessImage image)
    {
        foreach (var t in PosixTimerInfo.Parse(File.ReadAllText($"/proc/{pid}/timers")))
        {
            var (interval, value) = calls.GetPosixTimer(t.Id);
            image.PosixTimers.Add(new PosixTimer
            {
                Id = t.Id, Clock = t.Clock, Signal = t.Signal, Value = t.Value, Notify = t.Notify, NotifyTid = t.NotifyTid,
                IntervalNs = interval, ValueNs = value,
            });
        }
        for (int which = 0; which < 3; which++)
        {
            var (interval, value) = calls.GetIntervalTimer(which);
            if (interval != 0 || value != 0)
                image.Itimers.Add(new IntervalTimer { Which = which, IntervalUs = interval, ValueUs = value });
        }
    }

    /// <summary>POSIX timers, made again under their ids (in order: an id is the lowest free one).</summary>
    public static void RestorePosixTimers(RemoteCalls calls, ProcessImage image)
    {
        foreach (var t in image.PosixTimers.OrderBy(t => t.Id))
        {
            // A periodic timer that fired while the process was stopped is waiting for its signal to be taken.
            long value = t.ValueNs == 0 && t.IntervalNs != 0 ? t.IntervalNs : t.ValueNs;
            calls.CreatePosixTimer(t.Id, t.Clock, t.Signal, t.Value, t.Notify, t.NotifyTid, t.IntervalNs, value);
        }
    }

    /// <summary>Interval timers, last of all: ITIMER_REAL runs on from the moment it is set.</summary>
    public static void RestoreIntervalTimers(RemoteCalls calls, ProcessImage image)
    {
        foreach (var timer in image.Itimers)
        {
            // A periodic ITIMER_REAL that fired while the process was stopped waits, disarmed, for its
            // SIGALRM to be dequeued before the kernel rearms it; a value of 0 here would disarm it for good.
            long value = timer.ValueUs == 0 ? timer.IntervalUs : timer.ValueUs;
            calls.SetIntervalTimer(timer.Which, timer.IntervalUs, value);
        }
    }
}
