using Amber.Kernel.Ptrace;
using Amber.Native;

namespace Amber.Kernel.Inject;

/// <summary>
/// Runs syscalls inside a stopped tracee, as the tracee: the registers are set to a syscall at a
/// known `syscall` instruction (orig_rax = -1 so no restart logic fires), the thread runs exactly
/// that instruction, and rax holds the result. Two ways to stop right after it:
/// <list type="bullet">
/// <item>single-step (any `syscall` instruction, e.g. one found in [vdso]: nothing is written to the target);</item>
/// <item>continue to an int3 placed right after the instruction (a trampoline Amber wrote; faster).</item>
/// </list>
/// The registers the thread had before are kept and put back by <see cref="RestoreRegisters"/>.
/// Signals that arrive meanwhile are not lost: they are remembered and handed back on detach.
/// </summary>
public sealed class SyscallInjector
{
    private readonly Tracee _thread;
    private readonly Registers _original;
    private readonly Registers _work;

    public SyscallInjector(Tracee thread, ulong instruction, bool int3Follows, Registers? original = null)
    {
        _thread = thread;
        Instruction = instruction;
        Int3Follows = int3Follows;
        _original = original ?? thread.GetRegisters();
        _work = _original.Clone();
    }

    public ulong Instruction { get; }

    public bool Int3Follows { get; }

    public Tracee Thread => _thread;

    public Registers OriginalRegisters => _original;

    /// <summary>A signal that was dequeued while injecting; pass it to PTRACE_DETACH so it is delivered.</summary>
    public int DeferredSignal { get; private set; }

    /// <summary>Children the injected syscalls created (fork/clone events), in order.</summary>
    public List<int> NewChildren { get; } = [];

    public long Call(long number, params ReadOnlySpan<ulong> args)
    {
        _work.PrepareSyscall(Instruction, number, args);
        var regs = RunToTrap($"injected syscall {number}");
        ulong expected = Instruction + (Int3Follows ? 3UL : 2UL);
        if (regs.Rip != expected)
            throw new InjectionException($"injected syscall {number} in {_thread.Name} stopped at 0x{regs.Rip:x}, expected 0x{expected:x}");
        return (long)regs.Rax;
    }

    /// <summary>
    /// Runs the loop of <see cref="Trampoline"/> (the trampoline's start being <see cref="Instruction"/>)
    /// over <paramref name="count"/> entries at <paramref name="table"/>; returns how many it had left
    /// when it stopped: 0, or the one that failed and those after it.
    /// </summary>
    public int RunBatch(ulong table, int count)
    {
        if (!Int3Follows)
            throw new InvalidOperationException("a batch of calls needs the trampoline, not a single-stepped syscall instruction");
        _work.PrepareBatch(Instruction + Trampoline.RunnerOffset, table, (ulong)count);
        var regs = RunToTrap($"a batch of {count} injected syscalls");
        ulong expected = Instruction + Trampoline.RunnerStop;
        if (regs.Rip != expected)
            throw new InjectionException($"a batch of {count} injected syscalls in {_thread.Name} stopped at 0x{regs.Rip:x}, expected 0x{expected:x}");
        return (int)regs.R13;
    }

    /// <summary>Lets the thread run the prepared registers until it stops at an int3 (or a single step ends).</summary>
    private Registers RunToTrap(string what)
    {
        _thread.SetRegisters(_work);
        Resume(0);
        while (true)
        {
            var status = _thread.Wait();
            if (status.IsGone)
            {
                _thread.MarkGone();
                throw new TargetGoneException(_thread.Pid);
            }
            if (status.IsTrap)
                break;
            int ev = status.Event;
            if (ev is Interop.PTRACE_EVENT_FORK or Interop.PTRACE_EVENT_CLONE or Interop.PTRACE_EVENT_VFORK)
            {
                NewChildren.Add((int)_thread.GetEventMessage());
                Resume(0);
                continue;
            }
            if (status.IsEventStop)
            {
                Resume(0);
                continue;
            }
            int sig = status.StopSignal;
            if (sig is Interop.SIGSEGV or 7 /* SIGBUS */ or 4 /* SIGILL */ or 8 /* SIGFPE */)
            {
                var at = _thread.GetRegisters().Rip;
                throw new InjectionException($"{what} in {_thread.Name} faulted with signal {sig} at 0x{at:x}");
            }
            // A real signal arrived: keep it for the detach instead of delivering it into our injection.
            DeferredSignal = sig;
            Resume(0);
        }
        return _thread.GetRegisters();
    }

    /// <summary>Calls and turns a -errno result into <see cref="KernelCallException"/> naming the call.</summary>
    public long CallChecked(string name, long number, params ReadOnlySpan<ulong> args)
    {
        long rv = Call(number, args);
        if (rv < 0 && rv > -4096)
            throw new KernelCallException($"{name} (injected)", _thread.Name, (int)-rv);
        return rv;
    }

    public void RestoreRegisters() => _thread.SetRegisters(_original);

    private void Resume(int signal)
    {
        if (Int3Follows)
            _thread.Continue(signal);
        else
            _thread.SingleStep(signal);
    }
}
