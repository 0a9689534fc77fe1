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

    /// <summary>Collects whatever ended since the last call; returns the pids collected now.</summary>
    public unsafe List<int> Collect()
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
