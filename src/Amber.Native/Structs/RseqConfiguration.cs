using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct ptrace_rseq_configuration, filled by PTRACE_GET_RSEQ_CONFIGURATION.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct RseqConfiguration
{
    public ulong rseq_abi_pointer;
    public uint rseq_abi_size;
    public uint signature;
    public uint flags;
    public uint pad;

    public const int Size = 24;
}
