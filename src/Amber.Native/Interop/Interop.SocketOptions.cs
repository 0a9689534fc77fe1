namespace Amber.Native;

internal static partial class Interop
{
    // Options of inet sockets a restore sets again as they were (SocketInspector).
    internal const int IPPROTO_IP = 0;
    internal const int IP_TOS = 1;
    internal const int IPV6_TCLASS = 67;
    internal const int SO_MARK = 36;
    internal const int TCP_CORK = 3;
    internal const int TCP_KEEPIDLE = 4;
    internal const int TCP_KEEPINTVL = 5;
    internal const int TCP_KEEPCNT = 6;
    internal const int TCP_USER_TIMEOUT = 18;
    internal const int SO_LINGER = 13;
    internal const int TCP_CONGESTION = 13;
}
