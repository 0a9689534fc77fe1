using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct user_regs_struct (sys/user.h), x86_64: what NT_PRSTATUS carries.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UserRegs
{
    public ulong r15, r14, r13, r12, rbp, rbx, r11, r10, r9, r8;
    public ulong rax, rcx, rdx, rsi, rdi, orig_rax, rip, cs, eflags, rsp, ss;
    public ulong fs_base, gs_base, ds, es, fs, gs;

    public const int Size = 216;
}
