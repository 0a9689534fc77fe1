using Amber.Native;

namespace Amber.Kernel.Processes;

/// <summary>A thread's I/O priority, read from outside (no call injected into it).</summary>
public static class IoPriority
{
    /// <summary>Thread <paramref name="tid"/>'s I/O priority (ioprio_get, IOPRIO_WHO_PROCESS): class in bits 13.., level below.</summary>
    /// <exception cref="KernelCallException">The thread is gone, or amber may not ask.</exception>
    public static int Of(int tid) => Errnos.Check(Interop.IoprioGet(Interop.IOPRIO_WHO_PROCESS, tid), "ioprio_get", $"thread {tid}");
}
