using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;
using Amber.Kernel.Processes;

namespace Amber.Checkpoint.Resources.Scheduling;

/// <summary>
/// What each thread set for itself about how it runs: its nice value, policy and real-time priority,
/// CPU mask and I/O priority, and the prctl settings kept per thread (timer slack, machine-check kill
/// policy, keep-capabilities). A restored thread starts with the restore's own (amber's): each is set
/// back by the thread itself, the scheduling before its credentials are (an unprivileged thread may
/// not lower its nice value or take a real-time policy), the rest after (keep-capabilities would
/// change what the credentials' own change keeps).
/// </summary>
public static class ThreadSettings
{
    private const int SchedDeadline = 6;
    private const int SchedResetOnFork = 0x40000000;

    /// <summary>
    /// Thread <paramref name="thread"/>'s own, of process <paramref name="pid"/> (amber's ids): what
    /// /proc and ioprio_get tell from outside, the rest asked by the thread (four injected calls:
    /// the policy, for SCHED_RESET_ON_FORK, which /proc does not show, and three prctl).
    /// </summary>
    /// <param name="status">The thread's /proc status, read already.</param>
    public static void Dump(RemoteCalls calls, int pid, int tid, ProcStatus status, ThreadImage thread)
    {
        var stat = ProcFs.ReadThreadStat(pid, tid);
        int policy = calls.GetPolicy();
        if ((policy & ~SchedResetOnFork) == SchedDeadline)
            throw new UnsupportedResourceException(pid, $"thread {thread.Tid}'s scheduling policy", "SCHED_DEADLINE (its runtime, deadline and period are not read)");
        thread.Scheduling = new ThreadScheduling
        {
            Nice = stat.Nice, Policy = policy, Priority = stat.RtPriority,
            Affinity = Google.Protobuf.ByteString.CopyFrom(status.CpusAllowed), IoPriority = IoPriority.Of(tid),
        };
        thread.TimerSlackNs = calls.GetTimerSlack();
        thread.MceKill = calls.GetMceKill();
        thread.KeepCaps = calls.GetKeepCapabilities();
    }

    /// <summary>The thread's scheduling, where the image has it and it differs from the restore's own; what the kernel refuses is said as a warning.</summary>
    public static void RestoreScheduling(RemoteCalls calls, ProcessImage image, ThreadImage thread, List<string> warnings)
    {
        if (thread.Scheduling is not { } saved)
            return;
        string who = thread.Tid == image.Pid ? $"process {image.Pid}" : $"process {image.Pid} thread {thread.Tid}";
        void Try(string what, Action set)
        {
            try
            {
                set();
            }
            catch (KernelCallException e) when (e.Errno is Errnos.EPERM or Errnos.EINVAL)
            {
                warnings.Add($"{who}: its {what} could not be set back ({e.Message})");
            }
        }
        // Read from outside, as at checkpoint; set by the thread. The policy first: setting it
        // resets the nice value of a real-time one.
        var (pid, tid) = (calls.Injector.Thread.Pid, calls.Injector.Thread.Tid);
        var now = ProcFs.ReadThreadStat(pid, tid);
        if (now.Policy != (saved.Policy & ~SchedResetOnFork) || now.RtPriority != saved.Priority || (saved.Policy & SchedResetOnFork) != 0)
        {
            Try($"scheduling policy {saved.Policy & ~SchedResetOnFork} (priority {saved.Priority})", () => calls.SetScheduler(saved.Policy, saved.Priority));
            now = ProcFs.ReadThreadStat(pid, tid);
        }
        if (now.Nice != saved.Nice)
            Try($"nice value {saved.Nice}", () => calls.SetNice(saved.Nice));
        if (!saved.Affinity.IsEmpty && !ProcFs.ReadThreadStatus(pid, tid).CpusAllowed.AsSpan().SequenceEqual(saved.Affinity.Span))
            Try("CPU mask (none of its CPUs here?)", () => calls.SetAffinity(saved.Affinity.Span));
        if (IoPriority.Of(tid) != saved.IoPriority)
            Try($"I/O priority {saved.IoPriority:x}", () => calls.SetIoPriority(saved.IoPriority));
    }

    /// <summary>The thread's prctl settings, where the image has them (with its scheduling).</summary>
    public static void RestoreSettings(RemoteCalls calls, ThreadImage thread)
    {
        if (thread.Scheduling is null)
            return;
        if (calls.GetTimerSlack() != thread.TimerSlackNs)
            calls.SetTimerSlack(thread.TimerSlackNs);
        if (calls.GetMceKill() != thread.MceKill)
            calls.SetMceKill(thread.MceKill);
        if (thread.KeepCaps)
            calls.KeepCapabilities(true);
    }
}
