using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct clone_args (linux/sched.h, CLONE_ARGS_SIZE_VER2 = 88 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct CloneArgs
{
    public ulong flags, pidfd, child_tid, parent_tid, exit_signal, stack, stack_size, tls, set_tid, set_tid_size, cgroup;

    public const int Size = 88;

    public const ulong CLONE_VM = 0x100;
    public const ulong CLONE_FS = 0x200;
    public const ulong CLONE_FILES = 0x400;
    public const ulong CLONE_SIGHAND = 0x800;
    public const ulong CLONE_THREAD = 0x10000;
    public const ulong CLONE_SYSVSEM = 0x40000;
    public const ulong CLONE_PARENT = 0x8000;
}
