using System.Runtime.InteropServices;
using Amber.Kernel.Ptrace;
using Amber.Native;

namespace Amber.Kernel.Processes;

/// <summary>
/// Reaps every child of this process that has ended (waitpid(-1, WNOHANG)), keeping how each ended:
/// a subreaper (the coordinator) inherits every orphan of its groups and must collect them all.
/// </summary>
public sealed class ChildReaper
{
    private readonly Dictionary<int, WaitStatus> _ended = [];
    private readonly object _lock = new();

    /// <summary>Held (shared) while a part of this process waits for a child of its own by its PID (a tool it runs).</summary>
    private static readonly ReaderWriterLockSlim OwnWaits = new(LockRecursionPolicy.SupportsRecursion);

    /// <summary>
    /// Until disposed (on the same thread), no reaper collects: a child started meanwhile is waited for
    /// by whoever started it, by its PID. What ends meanwhile is collected by the next <see cref="Collect"/>.
    /// </summary>
    public static IDisposable HoldOff()
    {
        OwnWaits.EnterReadLock();
        return new Release();
    }

    private sealed class Release : IDisposable
    {
        private bool _done;

        public void Dispose()
        {
            if (!_done)
                OwnWaits.ExitReadLock();
            _done = true;
        }
    }

    /// <summary>Collects whatever ended since the last call; returns the pids collected now (none while held off: <see cref="HoldOff"/>).</summary>
    public List<int> Collect()
    {
        if (!OwnWaits.TryEnterWriteLock(0))
            return [];
        try
        {
            return CollectNow();
        }
        finally
        {
            OwnWaits.ExitWriteLock();
        }
    }

    private unsafe List<int> CollectNow()
    {
        var collected = new List<int>();
        while (true)
        {
            int raw;
            int pid = Interop.WaitPid(-1, &raw, Interop.WNOHANG);
            if (pid <= 0)
            {
                if (pid < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR)
                    continue;
                return collected;
            }
            var status = new WaitStatus(pid, raw);
            if (!status.IsGone)
                continue;
            lock (_lock)
                _ended[pid] = status;
            collected.Add(pid);
        }
    }

    /// <summary>How a child ended, if it has been collected (and not forgotten since).</summary>
    public bool TryGetEnd(int pid, out WaitStatus status)
    {
        lock (_lock)
            return _ended.TryGetValue(pid, out status);
    }

    public void Forget(int pid)
    {
        lock (_lock)
            _ended.Remove(pid);
    }
}
