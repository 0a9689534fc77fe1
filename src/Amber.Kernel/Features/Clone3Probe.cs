using System.Runtime.InteropServices;
using Amber.Kernel.Processes;
using Amber.Native;

namespace Amber.Kernel.Features;

/// <summary>clone3 with set_tid: how a restore gets back a process's or thread's own PID.</summary>
internal static class Clone3Probe
{
    /// <summary>set_tid (with clone3 CLONE_ARGS_SIZE_VER1) came in Linux 5.5.</summary>
    private static readonly Version Since = new(5, 5);

    public static (bool Present, string Detail) SetTid()
    {
        string release = KernelRelease.Read();
        if (KernelRelease.Parse(release) < Since)
            return (false, $"kernel {release} is older than {Since}");
        int cap = Capabilities.HasEffective(Capabilities.CAP_CHECKPOINT_RESTORE) ? Capabilities.CAP_CHECKPOINT_RESTORE
            : Capabilities.HasEffective(Capabilities.CAP_SYS_ADMIN) ? Capabilities.CAP_SYS_ADMIN
            : -1;
        if (cap < 0)
            return (false, "neither CAP_CHECKPOINT_RESTORE nor CAP_SYS_ADMIN is effective");
        int errno = TryOwnPid();
        return errno == Errnos.EEXIST
            ? (true, $"kernel {release}, {Capabilities.Name(cap)}")
            : (false, errno switch
            {
                Errnos.ENOSYS => "clone3: Function not implemented (blocked by a seccomp filter?)",
                0 => "clone3 made a process instead of refusing a PID in use",
                _ => $"clone3(set_tid): {Marshal.GetPInvokeErrorMessage(errno)} (expected EEXIST for a PID in use)",
            });
    }

    /// <summary>
    /// clone3 asking for our own PID, which is taken: a kernel that supports set_tid and lets us use it
    /// fails with EEXIST when it allocates the PID, before a child exists (it undoes the copy it had
    /// made). No other answer is a pass. Should a child ever come out of it, it exits at once.
    /// </summary>
    private static unsafe int TryOwnPid()
    {
        ulong tid = (ulong)Environment.ProcessId;
        var args = new CloneArgs
        {
            exit_signal = Interop.SIGCHLD,
            set_tid = (ulong)&tid,
            set_tid_size = 1,
        };
        long rv = Interop.Syscall(SyscallNumbers.Clone3, (long)&args, CloneArgs.Size, 0, 0, 0, 0);
        if (rv == 0)
            Interop.Syscall(SyscallNumbers.ExitGroup, 0, 0, 0, 0, 0, 0);
        if (rv > 0)
        {
            Spawner.Reap((int)rv);
            return 0;
        }
        return Marshal.GetLastPInvokeError();
    }
}
