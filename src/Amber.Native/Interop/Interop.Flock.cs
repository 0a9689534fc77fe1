using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "flock", SetLastError = true)]
    internal static partial int Flock(int fd, int operation);
}
