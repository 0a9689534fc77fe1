using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    // Syscalls without a glibc wrapper on Debian 12. The same numbers are used when Amber injects
    // syscalls into a tracee (see SyscallNumbers).
    [LibraryImport(Libc, EntryPoint = "syscall", SetLastError = true)]
    internal static partial long Syscall(long number, long a1, long a2, long a3, long a4, long a5, long a6);

    internal static int PidfdOpen(int pid, uint flags) =>
        (int)Syscall(SyscallNumbers.PidfdOpen, pid, flags, 0, 0, 0, 0);

    internal static int PidfdGetfd(int pidfd, int targetFd, uint flags) =>
        (int)Syscall(SyscallNumbers.PidfdGetfd, pidfd, targetFd, flags, 0, 0, 0);

    internal const int KCMP_FILE = 0;
    internal const int KCMP_FILES = 2;
    internal const int KCMP_EPOLL_TFD = 7;

    internal static int Kcmp(int pid1, int pid2, int type, long idx1, long idx2) =>
        (int)Syscall(SyscallNumbers.Kcmp, pid1, pid2, type, idx1, idx2, 0);
}
