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

    // A program's own netlink sockets: their options (SOL_NETLINK) and the groups they listen to.
    internal const int SOL_NETLINK = 270;
    internal const int NETLINK_ADD_MEMBERSHIP = 1;
    internal const int NETLINK_PKTINFO = 3;
    internal const int NETLINK_BROADCAST_ERROR = 4;
    internal const int NETLINK_NO_ENOBUFS = 5;
    internal const int NETLINK_LISTEN_ALL_NSID = 8;
    internal const int NETLINK_LIST_MEMBERSHIPS = 9;
    internal const int NETLINK_CAP_ACK = 10;
    internal const int NETLINK_EXT_ACK = 11;
    internal const int NETLINK_GET_STRICT_CHK = 12;

    [LibraryImport(Libc, EntryPoint = "socket", SetLastError = true)]
    internal static partial int Socket(int domain, int type, int protocol);
}
