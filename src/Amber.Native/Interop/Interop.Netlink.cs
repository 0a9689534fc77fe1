using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int AF_NETLINK = 16;
    internal const int NETLINK_SOCK_DIAG = 4;
    internal const int SOCK_DIAG_BY_FAMILY = 20;
    internal const int NLM_F_REQUEST = 1;
    internal const int UDIAG_SHOW_PEER = 4;
    internal const int UNIX_DIAG_PEER = 2;
    internal const int UDIAG_SHOW_RQLEN = 0x10;
    internal const int UNIX_DIAG_RQLEN = 4;
    internal const int UDIAG_SHOW_ICONS = 8;
    internal const int UNIX_DIAG_ICONS = 3;
    internal const int UNIX_DIAG_SHUTDOWN = 6;

    [LibraryImport(Libc, EntryPoint = "socket", SetLastError = true)]
    internal static partial int Socket(int domain, int type, int protocol);
}
