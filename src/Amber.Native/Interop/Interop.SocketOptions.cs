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

    // A UDP socket's queue read and filled again (Amber.Kernel.Net.UdpQueue).
    internal const int IPPROTO_UDP = 17;
    internal const int IP_PKTINFO = 8;          // level IPPROTO_IP: a cmsg with the datagram's destination
    internal const int IPV6_RECVPKTINFO = 49;   // level IPPROTO_IPV6: asks for IPV6_PKTINFO cmsgs
    internal const int IPV6_PKTINFO = 50;
    internal const int SO_MEMINFO = 55;         // u32[SK_MEMINFO_VARS]: rmem_alloc first, drops at 8
    internal const int SK_MEMINFO_RMEM_ALLOC = 0;
    internal const int SK_MEMINFO_DROPS = 8;
    internal const int SK_MEMINFO_VARS = 9;
}
