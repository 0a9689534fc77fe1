using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>epoll from amber's side: an epoll set of another process, reached through a copy of its fd.</summary>
internal static partial class Interop
{
    internal const uint EPOLLEXCLUSIVE = 1u << 28;
    internal const uint EPOLLONESHOT = 1u << 30;
    internal const uint EPOLLET = 1u << 31;

    /// <summary>unshare: an fd table of the calling thread's own (a copy of the process's, from then on apart).</summary>
    internal const int CLONE_FILES = 0x00000400;

    /// <summary>struct epoll_event is packed on x86-64: 4 bytes of events, 8 of data.</summary>
    internal const int EpollEventSize = 12;

    [LibraryImport(Libc, EntryPoint = "epoll_wait", SetLastError = true)]
    internal static unsafe partial int EpollWait(int epfd, byte* events, int maxEvents, int timeoutMs);

    [LibraryImport(Libc, EntryPoint = "epoll_ctl", SetLastError = true)]
    internal static unsafe partial int EpollCtl(int epfd, int op, int fd, byte* ev);

    [LibraryImport(Libc, EntryPoint = "dup3", SetLastError = true)]
    internal static partial int Dup3(int oldFd, int newFd, int flags);
}
