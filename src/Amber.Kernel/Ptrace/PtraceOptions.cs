namespace Amber.Kernel.Ptrace;

[Flags]
public enum PtraceOptions
{
    None = 0,
    TraceFork = 1 << 1,
    TraceVfork = 1 << 2,
    TraceClone = 1 << 3,
    ExitKill = 1 << 20,
    /// <summary>The tracee's seccomp filters do not apply to it while traced (CAP_SYS_ADMIN): injected syscalls pass.</summary>
    SuspendSeccomp = 1 << 21,
}
