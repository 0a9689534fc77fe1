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
            {
                string holder = ProcFs.TryReadStatus(pid, out var s) && s is not null
                    ? s.State == 'Z'
                        ? $"a zombie of '{s.Name}' that its parent (process {s.ParentPid}) has not reaped"
                        : $"the running process '{s.Name}'"
                    : "another process";
                throw new CheckpointException($"PID {pid} is still taken after {timeout.TotalSeconds:0.#} s: it belongs to {holder}");
            }
            Thread.Sleep(10);
        }
    }
}
