using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct tcp_repair_window (linux/tcp.h), 20 bytes: the argument of TCP_REPAIR_WINDOW.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct TcpRepairWindow
{
    public uint snd_wl1, snd_wnd, max_window, rcv_wnd, rcv_wup;

    public const int Size = 20;
}
