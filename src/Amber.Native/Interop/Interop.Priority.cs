using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int PRIO_PROCESS = 0;

    /// <summary>setpriority(2); with PRIO_PROCESS and who 0, the calling thread's nice value (Linux: per thread).</summary>
    [LibraryImport(Libc, EntryPoint = "setpriority", SetLastError = true)]
    internal static partial int SetPriority(int which, uint who, int prio);
}
