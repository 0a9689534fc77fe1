using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>
/// What the two ends agreed on at the handshake, as TCP_INFO's tcpi_options reports it. Only these
/// three can be set again (TCP_REPAIR_OPTIONS); other bits the kernel reports (ECN...) are kept as read.
/// </summary>
[Flags]
public enum TcpOptions : byte
{
    None = 0,
    Timestamps = Interop.TCPI_OPT_TIMESTAMPS,
    Sack = Interop.TCPI_OPT_SACK,
    WindowScale = Interop.TCPI_OPT_WSCALE,
}
