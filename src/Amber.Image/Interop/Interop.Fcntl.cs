using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

internal static partial class Interop
{
    internal static partial class Libc
    {
        internal const int F_GETFL = 3;
        internal const int F_SETFL = 4;
        internal const int O_DIRECT = 0x4000;

        [LibraryImport(LibraryName, EntryPoint = "fcntl", SetLastError = true)]
        internal static partial int Fcntl(SafeFileHandle fd, int command, long argument);
    }
}
