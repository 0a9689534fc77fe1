using Amber.Native;

namespace Amber.Kernel.Ptrace;

/// <summary>
/// The general registers of a stopped thread (struct user_regs_struct), as raw bytes plus typed access
/// to the fields the engine touches. Raw bytes are what the image stores.
/// </summary>
public sealed class Registers
{
    private UserRegs _regs;

    internal Registers(UserRegs regs) => _regs = regs;

    public static Registers FromBytes(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length != UserRegs.Size)
            throw new ArgumentException($"registers are {bytes.Length} bytes, expected {UserRegs.Size}");
        return new Registers(System.Runtime.InteropServices.MemoryMarshal.Read<UserRegs>(bytes));
    }

    internal ref UserRegs Raw => ref _regs;

    public ulong Rip { get => _regs.rip; set => _regs.rip = value; }
    public ulong Rsp { get => _regs.rsp; set => _regs.rsp = value; }
    public ulong Rax { get => _regs.rax; set => _regs.rax = value; }
    public ulong OrigRax { get => _regs.orig_rax; set => _regs.orig_rax = value; }
    public ulong Rdi => _regs.rdi;
    public ulong FsBase { get => _regs.fs_base; set => _regs.fs_base = value; }
    public ulong GsBase => _regs.gs_base;

    public Registers Clone() => new(_regs);

    public byte[] ToBytes()
    {
        var bytes = new byte[UserRegs.Size];
        System.Runtime.InteropServices.MemoryMarshal.Write(bytes, in _regs);
        return bytes;
    }

    /// <summary>Sets up a syscall at <paramref name="instruction"/>: orig_rax = -1 so no restart logic fires on it.</summary>
    public void PrepareSyscall(ulong instruction, long number, ReadOnlySpan<ulong> args)
    {
        _regs.rip = instruction;
        _regs.rax = (ulong)number;
        _regs.orig_rax = ulong.MaxValue;
        _regs.rdi = args.Length > 0 ? args[0] : 0;
        _regs.rsi = args.Length > 1 ? args[1] : 0;
        _regs.rdx = args.Length > 2 ? args[2] : 0;
        _regs.r10 = args.Length > 3 ? args[3] : 0;
        _regs.r8 = args.Length > 4 ? args[4] : 0;
        _regs.r9 = args.Length > 5 ? args[5] : 0;
    }

    /// <summary>
    /// Sets up the loop of <see cref="Inject.Trampoline"/> at <paramref name="runner"/> over
    /// <paramref name="count"/> entries at <paramref name="table"/> (orig_rax = -1, as for one call).
    /// </summary>
    public void PrepareBatch(ulong runner, ulong table, ulong count)
    {
        _regs.rip = runner;
        _regs.orig_rax = ulong.MaxValue;
        _regs.r12 = table;
        _regs.r13 = count;
    }

    /// <summary>The entries the loop of <see cref="Inject.Trampoline"/> had left when it stopped.</summary>
    public ulong R13 => _regs.r13;

    /// <summary>Syscalls made to run with <see cref="PrepareSyscall"/> (exit_group, tgkill), or found interrupted (<see cref="InterruptedSyscall"/>).</summary>
    public static class Syscalls
    {
        public const int ExitGroup = Amber.Native.SyscallNumbers.ExitGroup;
        public const int Tgkill = Amber.Native.SyscallNumbers.Tgkill;
        public const int Semop = Amber.Native.SyscallNumbers.Semop;
        public const int Semtimedop = Amber.Native.SyscallNumbers.Semtimedop;
        public const int Msgsnd = Amber.Native.SyscallNumbers.Msgsnd;
        public const int Msgrcv = Amber.Native.SyscallNumbers.Msgrcv;
    }

    /// <summary>The syscall a thread was stopped inside (rax = -ERESTART*), or -1.</summary>
    public long InterruptedSyscall =>
        (long)_regs.orig_rax >= 0 && (long)_regs.rax is -Errnos.ERESTARTSYS or -Errnos.ERESTARTNOINTR or -Errnos.ERESTARTNOHAND or -Errnos.ERESTART_RESTARTBLOCK
            ? (long)_regs.orig_rax
            : -1;

    /// <summary>
    /// A call that ended with EINTR only because the thread was stopped (epoll_wait, sigtimedwait,
    /// semtimedop... return EINTR after any stop, see signal(7)) is turned back into a call in
    /// progress: rax = -ERESTARTNOINTR, which the kernel re-executes when the thread resumes (and a
    /// restore does, <see cref="PrepareSyscallRestart"/>), so the program never sees the stop.
    /// Only for a thread stopped right at the end of the call (orig_rax set), before user code ran.
    /// </summary>
    public bool UndoInterruption()
    {
        if ((long)_regs.orig_rax < 0 || (long)_regs.rax != -Errnos.EINTR)
            return false;
        _regs.rax = unchecked((ulong)-Errnos.ERESTARTNOINTR);
        return true;
    }

    /// <summary>
    /// A thread stopped inside an interrupted syscall shows rax = -ERESTART*. In a new process the
    /// kernel's restart state is gone, so re-execute the syscall instruction instead (docs/kernel.md, pitfall 4).
    /// </summary>
    public bool PrepareSyscallRestart()
    {
        long rax = (long)_regs.rax;
        if ((long)_regs.orig_rax < 0)
            return false;
        if (rax is not (-Errnos.ERESTARTSYS or -Errnos.ERESTARTNOINTR or -Errnos.ERESTARTNOHAND or -Errnos.ERESTART_RESTARTBLOCK))
            return false;
        _regs.rax = _regs.orig_rax;
        _regs.rip -= 2; // "syscall" is 0f 05
        _regs.orig_rax = ulong.MaxValue;
        return true;
    }
}
