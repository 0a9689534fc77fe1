using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct prctl_mm_map (linux/prctl.h), 104 bytes: the one PR_SET_MM call that needs no CAP_SYS_RESOURCE.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PrctlMmMap
{
    public ulong start_code, end_code, start_data, end_data, start_brk, brk, start_stack;
    public ulong arg_start, arg_end, env_start, env_end;
    public ulong auxv;
    public uint auxv_size;
    public uint exe_fd;

    public const int Size = 104;
}
