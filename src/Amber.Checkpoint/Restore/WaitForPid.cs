using System.Diagnostics;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// The saved PID must be free. After a checkpoint ended the process, its parent (or a lazy init)
/// may take a moment to reap it: wait a bounded time, then say who holds the PID.
/// </summary>
public static class WaitForPid
{
    public static void Free(int pid, TimeSpan timeout, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        while (ProcFs.Exists(pid))
        {
            cancel.ThrowIfCancellationRequested();
            if (clock.Elapsed > timeout)
                throw new CheckpointException($"PID {pid} is still taken after {timeout.TotalSeconds:0.#} s: it belongs to {Holder(pid)}");
            Thread.Sleep(10);
        }
    }

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
