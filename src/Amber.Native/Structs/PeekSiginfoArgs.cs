using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct ptrace_peeksiginfo_args.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PeekSiginfoArgs
{
    public ulong off;
    public uint flags;
    public int nr;

    public const int SiginfoSize = 128;
}
