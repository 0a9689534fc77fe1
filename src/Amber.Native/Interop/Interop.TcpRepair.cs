namespace Amber.Native;

/// <summary>
/// TCP_REPAIR (netinet/tcp.h, linux/tcp.h) and the socket ioctls that size its queues
/// (linux/sockios.h). The calls are getsockopt/setsockopt, send/recv and ioctl.
/// </summary>
internal static partial class Interop
{
    internal const int TCP_MAXSEG = 2;
    internal const int TCP_REPAIR = 19;
    internal const int TCP_REPAIR_QUEUE = 20;
    internal const int TCP_QUEUE_SEQ = 21;
    internal const int TCP_REPAIR_OPTIONS = 22;
    internal const int TCP_TIMESTAMP = 24;
    internal const int TCP_REPAIR_WINDOW = 29;

    internal const int TCP_REPAIR_ON = 1;
    internal const int TCP_REPAIR_OFF = 0;
    internal const int TCP_REPAIR_OFF_NO_WP = -1;

    internal const int TCP_NO_QUEUE = 0;
    internal const int TCP_RECV_QUEUE = 1;
    internal const int TCP_SEND_QUEUE = 2;

    // TCP_REPAIR_OPTIONS codes: the TCP header option kinds.
    internal const int TCPOPT_MAXSEG = 2;
    internal const int TCPOPT_WINDOW = 3;
    internal const int TCPOPT_SACK_PERMITTED = 4;
    internal const int TCPOPT_TIMESTAMP = 8;

    // tcp_info.tcpi_options bits.
    internal const int TCPI_OPT_TIMESTAMPS = 1;
    internal const int TCPI_OPT_SACK = 2;
    internal const int TCPI_OPT_WSCALE = 4;

    // tcp_info.tcpi_state (net/tcp_states.h; glibc declares them as an enum).
    internal const int TCP_ESTABLISHED = 1;
    internal const int TCP_SYN_SENT = 2;
    internal const int TCP_SYN_RECV = 3;
    internal const int TCP_FIN_WAIT1 = 4;
    internal const int TCP_FIN_WAIT2 = 5;
    internal const int TCP_TIME_WAIT = 6;
    internal const int TCP_CLOSE = 7;
    internal const int TCP_CLOSE_WAIT = 8;
    internal const int TCP_LAST_ACK = 9;
    internal const int TCP_LISTEN = 10;
    internal const int TCP_CLOSING = 11;

    internal const ulong SIOCINQ = 0x541B;       // bytes in the receive queue (FIONREAD)
    internal const ulong SIOCOUTQ = 0x5411;      // bytes in the send queue, sent or not (TIOCOUTQ)
    internal const ulong SIOCOUTQNSD = 0x894B;   // bytes in the send queue not sent yet

    // struct tcp_info: tcpi_state is byte 0, tcpi_options byte 5, and byte 6 holds the
    // bit-fields tcpi_snd_wscale:4 (low nibble) and tcpi_rcv_wscale:4 (high nibble).
    internal const int TcpInfoStateOffset = 0;
    internal const int TcpInfoOptionsOffset = 5;
    internal const int TcpInfoWscaleOffset = 6;
}
