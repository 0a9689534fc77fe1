using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int AT_EMPTY_PATH = 0x1000;

    internal const uint STATX_TYPE = 0x1;
    internal const uint STATX_SIZE = 0x200;

    /// <summary>stx_mnt_id as the 64-bit id the kernel never gives twice, in the order mounts are made (6.8).</summary>
    internal const uint STATX_MNT_ID_UNIQUE = 0x4000;

    // dirfd is the SafeFileHandle the image store holds (passed pointer-sized, as for Fsync); with
    // AT_EMPTY_PATH and an empty path, statx describes that file itself.
    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true)]
    internal static unsafe partial int Statx(SafeFileHandle dirfd, byte* path, int flags, uint mask, Statx* buffer);

    /// <summary>statx of a path (dirfd AT_FDCWD).</summary>
    [LibraryImport(Libc, EntryPoint = "statx", SetLastError = true)]
    internal static unsafe partial int Statx(int dirfd, byte* path, int flags, uint mask, Statx* buffer);
}
