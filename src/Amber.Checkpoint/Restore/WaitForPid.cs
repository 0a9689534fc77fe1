using System.Diagnostics;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// The saved PID must be free. After a checkpoint ended the process, its parent (or a lazy init)
/// may take a moment to reap it: wait a bounded time, then say who holds the PID.
/// </summary>
public static class WaitForPid
{
    /// <summary>SIGKILL's bit in a pending-signal mask (bit N-1 for signal N).</summary>
    private const ulong KillPending = 1UL << 8;

    /// <summary>
    /// Waits up to <paramref name="timeout"/> for <paramref name="pid"/> to be free; a holder that is not
    /// on its way out, only up to <paramref name="others"/> (null: the whole timeout) without a break.
    /// </summary>
    public static void Free(int pid, TimeSpan timeout, TimeSpan? others, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        var staying = Stopwatch.StartNew();
        while (ProcFs.Exists(pid))
        {
            cancel.ThrowIfCancellationRequested();
            if (others is null || Leaving(pid))
                staying.Restart();
            if (clock.Elapsed > timeout || staying.Elapsed > others)
                throw new CheckpointException($"PID {pid} is still taken after {Math.Min(clock.Elapsed.TotalSeconds, timeout.TotalSeconds):0.#} s: it belongs to {Holder(pid)}");
            Thread.Sleep(10);
        }
    }

    /// <summary>Whether PID <paramref name="pid"/>'s holder is on its way out: a zombie, dead, or with SIGKILL pending (or gone already).</summary>
    private static bool Leaving(int pid) =>
        !ProcFs.TryReadStatus(pid, out var s) || s is null || s.State is 'Z' or 'X' || ((s.SigPending | s.ShdPending) & KillPending) != 0;

    /// <summary>Who has PID <paramref name="pid"/> now, said so a user can act on it (amber's own processes and threads named as such).</summary>
    public static string Holder(int pid)
    {
        if (!ProcFs.TryReadStatus(pid, out var s) || s is null)
            return "another process, gone again";
        if (s.Tgid == Environment.ProcessId)
            return $"a thread of this amber ('{s.Name}')";
        if (s.State == 'Z')
            return $"a zombie of '{s.Name}' that its parent (process {s.ParentPid}) has not reaped";
        string own = s.ParentPid == Environment.ProcessId ? ", a child of this amber" : "";
        return s.Tgid == pid ? $"the running process '{s.Name}' (parent {s.ParentPid}{own})" : $"a thread of process {s.Tgid} ('{s.Name}')";
    }
}
