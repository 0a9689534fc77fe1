using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>stack_t, for sigaltstack(2).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct StackT
{
    public ulong ss_sp;
    public int ss_flags;
    public ulong ss_size;

    public const int Size = 24;
    public const int SS_DISABLE = 2;
}
