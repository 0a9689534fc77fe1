using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int SEEK_DATA = 3;
    internal const int SEEK_HOLE = 4;
    internal const int F_ADD_SEALS = 1033;
    internal const int F_GET_SEALS = 1034;
    internal const uint MFD_ALLOW_SEALING = 2;

    [LibraryImport(Libc, EntryPoint = "lseek64", SetLastError = true)]
    internal static partial long Lseek(int fd, long offset, int whence);
}
