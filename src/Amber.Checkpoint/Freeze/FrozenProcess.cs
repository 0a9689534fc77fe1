using Amber.Kernel;
using Amber.Kernel.Proc;
using Amber.Kernel.Ptrace;

namespace Amber.Checkpoint.Freeze;

/// <summary>
/// Every thread of one process stopped from outside: PTRACE_SEIZE + PTRACE_INTERRUPT of each thread,
/// re-listing /proc/PID/task until no new thread appears. The program is not asked and gets no signal.
/// While frozen, all signals are blocked in every thread (PTRACE_SETSIGMASK) so that injected
/// syscalls never meet a signal delivery; <see cref="Resume"/> puts masks and registers back and
/// detaches, leaving the program exactly as it was, even inside a blocking syscall.
/// </summary>
public sealed class FrozenProcess : IDisposable
{
    private const int MaxPasses = 100;
    private const ulong AllSignals = ulong.MaxValue;

    private readonly List<FrozenThread> _threads = [];
    private readonly Dictionary<int, Tracee> _seized = [];

    private FrozenProcess(int pid) => Pid = pid;

    public int Pid { get; }

    public IReadOnlyList<FrozenThread> Threads => _threads;

    public FrozenThread Leader => _threads[0];

    public bool Killed { get; private set; }

    /// <summary>Stopped by a signal (state T) when found: it is left, or restored, stopped.</summary>
    public bool WasStopped { get; private init; }

    public static FrozenProcess Freeze(int pid)
    {
        var frozen = Seize(pid);
        try
        {
            frozen.CollectStops();
            return frozen;
        }
        catch
        {
            frozen.Resume();
            throw;
        }
    }

    /// <summary>
    /// The first half of a freeze: every thread seized and asked to stop (re-listing until no new
    /// thread appears). In a frozen cgroup the stops arrive only once it is thawed: the barrier is
    /// the cgroup's, and <see cref="CollectStops"/> comes after the thaw.
    /// </summary>
    public static FrozenProcess Seize(int pid)
    {
        var frozen = new FrozenProcess(pid) { WasStopped = ProcFs.ReadStat(pid).State == 'T' };
        try
        {
            for (int pass = 0; ; pass++)
            {
                if (pass == MaxPasses)
                    throw new CheckpointException($"process {pid}: its threads kept changing while being stopped");
                bool added = false;
                foreach (int tid in ProcFs.ListThreads(pid))
                {
                    if (frozen._seized.ContainsKey(tid))
                        continue;
                    try
                    {
                        // No TRACECLONE: a thread born meanwhile is found by the next listing, and
                        // once every known thread is stopped nobody is left to start one.
                        frozen._seized[tid] = Tracee.Seize(pid, tid, PtraceOptions.SuspendSeccomp);
                    }
                    catch (Exception e) when (tid != pid && ThreadEnded(e, pid, tid))
                    {
                        continue; // a thread that just exited, or is exiting (ptrace refuses it)
                    }
                    added = true;
                }
                if (!added)
                    return frozen;
            }
        }
        catch
        {
            frozen.Resume();
            throw;
        }
    }

    /// <summary>The second half: each seized thread's stop collected, its registers and mask kept, all signals blocked.</summary>
    public void CollectStops()
    {
        // Listed again until every thread there is stopped: one seized thread may exit before its stop
        // (it is gone), or start another before it (seized now: nothing traces it yet).
        var stopped = new HashSet<int>();
        for (int pass = 0; ; pass++)
        {
            if (pass == MaxPasses)
                throw new CheckpointException($"process {Pid}: its threads kept changing while being stopped");
            bool added = false;
            foreach (int tid in ProcFs.ListThreads(Pid))
            {
                if (stopped.Contains(tid))
                    continue;
                if (!_seized.Remove(tid, out var tracee))
                {
                    try
                    {
                        tracee = Tracee.Seize(Pid, tid, PtraceOptions.SuspendSeccomp);
                    }
                    catch (Exception e) when (tid != Pid && ThreadEnded(e, Pid, tid))
                    {
                        continue;
                    }
                }
                WaitStatus status;
                try
                {
                    status = tracee.WaitForStop();
                    // A signal it was taking as it was seized (a SIGCHLD from a child that just ended):
                    // a signal-delivery-stop before the interrupt's. Delivered as it would have been,
                    // after which the interrupt stops it (at the handler's entry, if it has one).
                    for (int delivered = 0; status.Stopped && !status.IsEventStop && delivered < MaxPasses; delivered++)
                    {
                        tracee.Continue(status.StopSignal);
                        status = tracee.WaitForStop();
                    }
                }
                catch (TargetGoneException) when (tid != Pid)
                {
                    tracee.Dispose(); // exited between its seizure and its stop
                    continue;
                }
                stopped.Add(tid);
                added = true;
                var regs = tracee.GetRegisters();
                ulong mask = tracee.GetSignalMask();
                if (status.IsEventStop && !WasStopped && !SignalWaits(tid, mask) && regs.UndoInterruption())
                    tracee.SetRegisters(regs);
                _threads.Add(new FrozenThread(tracee, regs, mask));
                if (!status.IsEventStop)
                    throw new CheckpointException($"process {Pid}: thread {tid} stopped unexpectedly ({status})");
                tracee.SetSignalMask(AllSignals);
            }
            if (!added)
                break;
        }
        // Tracees we seized whose thread vanished before the stop was collected.
        foreach (var t in _seized.Values)
            t.Dispose();
        _seized.Clear();
    }

    /// <summary>
    /// Whether <paramref name="e"/>, from seizing thread <paramref name="tid"/>, says it has exited or
    /// is exiting: ptrace refuses one on its way out (EPERM), and one may go between the seizure and
    /// the interrupt (ESRCH).
    /// </summary>
    private static bool ThreadEnded(Exception e, int pid, int tid)
    {
        if (e is TargetGoneException)
            return true;
        if (e is not KernelCallException { Errno: Errnos.EPERM or Errnos.ESRCH })
            return false;
        try
        {
            return ProcFs.ReadThreadStat(pid, tid).Ending;
        }
        catch (Exception gone) when (gone is TargetGoneException or IOException)
        {
            return true; // gone since
        }
    }

    /// <summary>
    /// A signal the thread will take once it runs: then a call it was in really was interrupted (by
    /// that signal), and ends as the program expects. Otherwise an EINTR it shows is the freeze's own.
    /// </summary>
    private bool SignalWaits(int tid, ulong mask)
    {
        var status = ProcFs.ReadThreadStatus(Pid, tid);
        return ((status.SigPending | status.ShdPending) & ~mask) != 0;
    }

    /// <summary>Puts back registers and signal masks and detaches every thread. Never throws.</summary>
    public List<string> Resume()
    {
        var problems = new List<string>();
        if (Killed)
            return problems;
        // Seized but not collected: their stop comes (the caller thawed any frozen cgroup first).
        foreach (var (tid, tracee) in _seized)
        {
            try
            {
                tracee.WaitForStop();
                tracee.Detach(WasStopped && tid == Pid ? Signals.SIGSTOP : 0);
            }
            catch (Exception e)
            {
                problems.Add($"thread {tid}: {e.Message}");
                tracee.Dispose();
            }
        }
        _seized.Clear();
        foreach (var t in _threads)
        {
            if (!t.Tracee.Attached)
                continue;
            try
            {
                t.Tracee.SetRegisters(t.Registers);
                t.Tracee.SetSignalMask(t.SignalMask);
                // A stopped process goes back to its stop: SIGSTOP handed over with the detach.
                t.Tracee.Detach(t.DeferredSignal != 0 ? t.DeferredSignal : WasStopped && t == Leader ? Signals.SIGSTOP : 0);
            }
            catch (Exception e)
            {
                problems.Add($"thread {t.Tid}: {e.Message}");
                t.Tracee.Dispose();
            }
        }
        return problems;
    }

    /// <summary>
    /// Ends the process after a successful dump (it never runs again after the cut): SIGKILL, which ends
    /// it once its threads are collected (Tracee.CollectEnded: a leader's end is told only after the
    /// other threads', docs/kernel.md pitfall 8).
    /// </summary>
    public void SendKill()
    {
        Spawner_Kill();
        Killed = true;
        foreach (var t in _threads)
            t.Tracee.MarkGone();
    }

    public void Dispose()
    {
        if (!Killed)
            Resume();
    }

    private void Spawner_Kill() => Kernel.Processes.Spawner.Kill(Pid, Signals.SIGKILL);
}
