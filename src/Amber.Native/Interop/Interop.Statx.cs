using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int AT_EMPTY_PATH = 0x1000;

    internal const uint STATX_TYPE = 0x1;
    internal const uint STATX_SIZE = 0x200;

    // dirfd is the SafeFileHandle the image store holds (passed pointer-sized, as for Fsync); with
    // AT_EMPTY_PATH and an empty path, statx describes that file itself.
    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true)]
    internal static unsafe partial int Statx(SafeFileHandle dirfd, byte* path, int flags, uint mask, Statx* buffer);
}
