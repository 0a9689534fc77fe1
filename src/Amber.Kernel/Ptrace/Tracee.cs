using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Ptrace;

/// <summary>
/// One traced thread. ptrace is thread-affine: every request for a tracee must come from the OS thread
/// that attached it, so a Tracee remembers that thread and refuses calls from any other.
/// Dispose detaches (never throws): a tracee Amber forgets about must run on as it was.
/// </summary>
public sealed partial class Tracee : IDisposable
{
    private readonly int _tracerThread = Environment.CurrentManagedThreadId;

    private Tracee(int pid, int tid)
    {
        Pid = pid;
        Tid = tid;
        Attached = true;
    }

    public int Pid { get; }

    public int Tid { get; }

    public bool Attached { get; private set; }

    public string Name => Pid == Tid ? $"process {Pid}" : $"thread {Tid} of process {Pid}";

    /// <summary>PTRACE_SEIZE then PTRACE_INTERRUPT; the stop is collected with <see cref="WaitForStop"/>.</summary>
    public static Tracee Seize(int pid, int tid, PtraceOptions options)
    {
        if (Interop.Ptrace(Interop.PTRACE_SEIZE, tid, 0, (nint)options) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Errnos.ESRCH)
                throw new TargetGoneException(pid);
            throw new KernelCallException("PTRACE_SEIZE", tid == pid ? $"process {pid}" : $"thread {tid} of process {pid}", errno);
        }
        var tracee = new Tracee(pid, tid);
        if (Interop.Ptrace(Interop.PTRACE_INTERRUPT, tid, 0, 0) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            tracee.Dispose();
            throw new KernelCallException("PTRACE_INTERRUPT", tracee.Name, errno);
        }
        return tracee;
    }

    /// <summary>A thread or process the kernel attached to us by itself (PTRACE_O_TRACEFORK/CLONE).</summary>
    public static Tracee Adopt(int pid, int tid) => new(pid, tid);

    public WaitStatus Wait()
    {
        CheckThread();
        return WaitAny(Tid);
    }

    public static unsafe WaitStatus WaitAny(int tid)
    {
        int status;
        int rv;
        do
        {
            rv = Interop.WaitPid(tid, &status, Interop.WALL);
        }
        while (rv < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR);
        if (rv < 0)
            Errnos.Throw("waitpid", $"thread {tid}");
        return new WaitStatus(rv, status);
    }

    /// <summary>
    /// Takes the last notifications of threads sent SIGKILL, in whatever order they end; returns those
    /// still not ended after <paramref name="limit"/>. Not one after another: the last thread of a PID
    /// namespace's PID 1 does not finish ending before every other thread in the namespace is
    /// collected, so waiting for it first would wait forever.
    /// </summary>
    public static unsafe List<int> CollectEnded(IEnumerable<int> tids, TimeSpan limit)
    {
        var pending = tids.Distinct().ToList();
        long deadline = Environment.TickCount64 + (long)limit.TotalMilliseconds;
        while (pending.Count > 0 && Environment.TickCount64 < deadline)
        {
            bool progress = false;
            for (int i = pending.Count - 1; i >= 0; i--)
            {
                int status;
                int rv = Interop.WaitPid(pending[i], &status, Interop.WALL | Interop.WNOHANG);
                if (rv == 0 || (rv < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR))
                    continue;
                progress = true; // a notification taken (a stop on its way out, say)
                if (rv < 0 || new WaitStatus(rv, status).IsGone) // ECHILD: nothing more will come of it
                    pending.RemoveAt(i);
            }
            if (!progress)
                Thread.Sleep(1);
        }
        return pending;
    }

    /// <summary>Waits for the first ptrace-stop (after seize/interrupt, or of an auto-attached child).</summary>
    public WaitStatus WaitForStop()
    {
        var status = Wait();
        if (status.IsGone)
        {
            Attached = false;
            throw new TargetGoneException(Pid);
        }
        return status;
    }

    public void SetOptions(PtraceOptions options) => Request(Interop.PTRACE_SETOPTIONS, 0, (nint)options, "PTRACE_SETOPTIONS");

    public void Continue(int signal = 0) => Request(Interop.PTRACE_CONT, 0, signal, "PTRACE_CONT");

    public void SingleStep(int signal = 0) => Request(Interop.PTRACE_SINGLESTEP, 0, signal, "PTRACE_SINGLESTEP");

    public unsafe ulong GetEventMessage()
    {
        ulong message;
        Request(Interop.PTRACE_GETEVENTMSG, 0, (nint)(&message), "PTRACE_GETEVENTMSG");
        return message;
    }

    /// <summary>Detaches, letting the thread run; a pending stop signal can be handed back with it.</summary>
    public void Detach(int signal = 0)
    {
        if (!Attached)
            return;
        Request(Interop.PTRACE_DETACH, 0, signal, "PTRACE_DETACH");
        Attached = false;
    }

    /// <summary>The thread died (killed on purpose): stop treating it as attached.</summary>
    public void MarkGone() => Attached = false;

    public void Dispose()
    {
        if (!Attached || Environment.CurrentManagedThreadId != _tracerThread)
            return;
        Interop.Ptrace(Interop.PTRACE_DETACH, Tid, 0, 0);
        Attached = false;
    }

    private void Request(int request, nint addr, nint data, string call)
    {
        CheckThread();
        if (Interop.Ptrace(request, Tid, addr, data) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno == Errnos.ESRCH && !Proc.ProcFs.Exists(Pid))
            {
                Attached = false;
                throw new TargetGoneException(Pid);
            }
            throw new KernelCallException(call, Name, errno);
        }
    }

    private void CheckThread()
    {
        if (Environment.CurrentManagedThreadId != _tracerThread)
            throw new InvalidOperationException($"ptrace request for {Name} from a thread other than its tracer");
    }
}
