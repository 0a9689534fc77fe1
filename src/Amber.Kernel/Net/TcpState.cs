using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>A TCP socket's state (net/tcp_states.h), as TCP_INFO reports it.</summary>
public enum TcpState
{
    Established = Interop.TCP_ESTABLISHED,
    SynSent = Interop.TCP_SYN_SENT,
    SynReceived = Interop.TCP_SYN_RECV,
    FinWait1 = Interop.TCP_FIN_WAIT1,
    FinWait2 = Interop.TCP_FIN_WAIT2,
    TimeWait = Interop.TCP_TIME_WAIT,
    Close = Interop.TCP_CLOSE,
    CloseWait = Interop.TCP_CLOSE_WAIT,
    LastAck = Interop.TCP_LAST_ACK,
    Listen = Interop.TCP_LISTEN,
    Closing = Interop.TCP_CLOSING,
}
