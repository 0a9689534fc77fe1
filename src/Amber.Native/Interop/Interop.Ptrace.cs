using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int PTRACE_TRACEME = 0;
    internal const int PTRACE_CONT = 7;
    internal const int PTRACE_KILL = 8;
    internal const int PTRACE_SINGLESTEP = 9;
    internal const int PTRACE_DETACH = 17;
    internal const int PTRACE_SETOPTIONS = 0x4200;
    internal const int PTRACE_GETEVENTMSG = 0x4201;
    internal const int PTRACE_GETSIGINFO = 0x4202;
    internal const int PTRACE_GETREGSET = 0x4204;
    internal const int PTRACE_SETREGSET = 0x4205;
    internal const int PTRACE_SEIZE = 0x4206;
    internal const int PTRACE_INTERRUPT = 0x4207;
    internal const int PTRACE_LISTEN = 0x4208;
    internal const int PTRACE_PEEKSIGINFO = 0x4209;
    internal const int PTRACE_GETSIGMASK = 0x420a;
    internal const int PTRACE_SETSIGMASK = 0x420b;
    internal const int PTRACE_GET_RSEQ_CONFIGURATION = 0x420f;
    internal const int PTRACE_SECCOMP_GET_FILTER = 0x420c;

    internal const int PTRACE_O_TRACESYSGOOD = 1;
    internal const int PTRACE_O_TRACEFORK = 1 << 1;
    internal const int PTRACE_O_TRACEVFORK = 1 << 2;
    internal const int PTRACE_O_TRACECLONE = 1 << 3;
    internal const int PTRACE_O_EXITKILL = 1 << 20;

    internal const int PTRACE_EVENT_FORK = 1;
    internal const int PTRACE_EVENT_VFORK = 2;
    internal const int PTRACE_EVENT_CLONE = 3;
    internal const int PTRACE_EVENT_EXEC = 4;
    internal const int PTRACE_EVENT_EXIT = 6;
    internal const int PTRACE_EVENT_STOP = 128;

    internal const int PTRACE_PEEKSIGINFO_SHARED = 1;

    internal const int NT_PRSTATUS = 1;
    internal const int NT_X86_XSTATE = 0x202;

    // glibc declares ptrace variadic; on x86_64 integer varargs travel in the same registers, so a
    // fixed four-argument import is the documented ABI-compatible call.
    [LibraryImport(Libc, EntryPoint = "ptrace", SetLastError = true)]
    internal static partial long Ptrace(long request, int pid, nint addr, nint data);
}
