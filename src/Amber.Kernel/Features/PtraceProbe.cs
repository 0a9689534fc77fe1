using Amber.Kernel.Processes;
using Amber.Kernel.Ptrace;

namespace Amber.Kernel.Features;

/// <summary>Seizes and interrupts a husk of ours, as a checkpoint does with its targets.</summary>
internal static class PtraceProbe
{
    /// <summary>Runs on the calling thread: seize, wait and detach must come from one OS thread.</summary>
    public static (bool Present, string Detail) SeizeInterrupt()
    {
        int pid = Spawner.Spawn(new SpawnOptions(Husk.Path, ["amber-husk"]) { Environment = [] });
        try
        {
            using var tracee = Tracee.Seize(pid, pid, PtraceOptions.None);
            var stop = tracee.WaitForStop();
            tracee.Detach();
            return stop.IsEventStop
                ? (true, "PTRACE_SEIZE + PTRACE_INTERRUPT gave an event stop")
                : (false, $"PTRACE_INTERRUPT gave no event stop: the child {stop}");
        }
        finally
        {
            Spawner.Kill(pid, Signals.SIGKILL);
            Spawner.Reap(pid);
        }
    }
}
