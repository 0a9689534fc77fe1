namespace Amber.Native;

/// <summary>Flags of the fd kinds that have no path: eventfd, timerfd, signalfd, epoll.</summary>
internal static partial class Interop
{
    internal const int EFD_SEMAPHORE = 1;
    internal const int EPOLL_CTL_ADD = 1;
    internal const int EPOLL_CTL_MOD = 3;
    internal const ulong TFD_IOC_SET_TICKS = 0x40085400; // _IOW('T', 0, u64)
    internal const int FIONREAD = 0x541B;
    internal const int LOCK_SH = 1;
    internal const int LOCK_EX = 2;
    internal const int LOCK_NB = 4;
    internal const int F_RDLCK = 0;
    internal const int F_WRLCK = 1;
    internal const int F_SETLK = 6;
    internal const int F_OFD_SETLK = 37;
}
