using Amber.Native;

namespace Amber.Kernel.Processes;

/// <summary>Work that must give way to the processes amber serves (a lazy restore's pushes ahead of any touch).</summary>
public static class BackgroundThread
{
    /// <summary>
    /// Lowers the calling thread's priority (nice 10): where the cores are short, the restored
    /// processes run first. Best effort: a thread left as it is only competes more.
    /// </summary>
    public static void GiveWay() => _ = Interop.SetPriority(Interop.PRIO_PROCESS, 0, 10);
}
