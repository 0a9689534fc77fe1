using Amber.Kernel.Processes;
using Amber.Kernel.Ptrace;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>Waiting for children of the test process to end, with a deadline.</summary>
public static class Exited
{
    public static WaitStatus Wait(int pid, TimeSpan timeout, string what)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (true)
        {
            if (Spawner.TryReap(pid, out var status))
                return status;
            if (DateTime.UtcNow > deadline)
            {
                Spawner.Kill(pid, 9);
                Spawner.Reap(pid);
                throw new TimeoutException($"{what} (pid {pid}) did not exit within {timeout.TotalSeconds} s; killed");
            }
            Thread.Sleep(5);
        }
    }
}
