using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct tcp_repair_opt (linux/tcp.h), 8 bytes: one element of TCP_REPAIR_OPTIONS.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct TcpRepairOpt
{
    public uint opt_code, opt_val;

    public const int Size = 8;
}
