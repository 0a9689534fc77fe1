using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int POSIX_FADV_WILLNEED = 3;

    /// <summary>posix_fadvise(3): returns the error number itself (0 on success), not -1 and errno.</summary>
    [LibraryImport(Libc, EntryPoint = "posix_fadvise", SetLastError = true)]
    internal static partial int PosixFadvise(int fd, long offset, long length, int advice);
}
