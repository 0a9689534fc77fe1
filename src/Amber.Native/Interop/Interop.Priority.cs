using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int PRIO_PROCESS = 0;

    /// <summary>setpriority(2); with PRIO_PROCESS and who 0, the calling thread's nice value (Linux: per thread).</summary>
    [LibraryImport(Libc, EntryPoint = "setpriority", SetLastError = true)]
    internal static partial int SetPriority(int which, uint who, int prio);

    internal const int IOPRIO_WHO_PROCESS = 1;

    /// <summary>ioprio_get(2) (no glibc wrapper): with IOPRIO_WHO_PROCESS, thread <paramref name="who"/>'s I/O priority.</summary>
    internal static int IoprioGet(int which, int who) => (int)Syscall(SyscallNumbers.IoprioGet, which, who, 0, 0, 0, 0);
}
