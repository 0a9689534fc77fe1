using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int SCM_RIGHTS = 1;
    internal const int MSG_CMSG_CLOEXEC = 0x40000000;
    internal const int MsghdrSize = 56; // struct msghdr on x86_64

    [LibraryImport(Libc, EntryPoint = "recvmsg", SetLastError = true)]
    internal static unsafe partial nint Recvmsg(int fd, byte* msghdr, int flags);
}
