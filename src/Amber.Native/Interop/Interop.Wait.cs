using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int WNOHANG = 1;
    internal const int WUNTRACED = 2;
    internal const int WALL = 0x40000000;

    [LibraryImport(Libc, EntryPoint = "waitpid", SetLastError = true)]
    internal static unsafe partial int WaitPid(int pid, int* status, int options);
}
