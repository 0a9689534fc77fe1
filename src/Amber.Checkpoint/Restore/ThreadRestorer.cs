using Amber.Image.Schema;
using Amber.Kernel.Inject;
using Amber.Kernel.Ptrace;

namespace Amber.Checkpoint.Restore;

/// <summary>Per-thread kernel state that lives outside memory: altstack, tid address, robust list, rseq, queued signals.</summary>
public static class ThreadRestorer
{
    public static void RestoreState(RemoteCalls calls, ThreadImage thread)
    {
        if (thread.Altstack is { } ss && (ss.Flags & 2 /* SS_DISABLE */) == 0)
            calls.SetAltStack(ss.Sp, ss.Flags & ~1 /* SS_ONSTACK is a status, not a setting */, ss.Size);
        calls.SetTidAddress(thread.TidAddress);
        if (thread.RobustListHead != 0)
            calls.SetRobustList(thread.RobustListHead, thread.RobustListLen);
        if (thread.Rseq is { } rseq)
            calls.RegisterRseq(rseq.Address, rseq.Length, rseq.Flags, rseq.Signature);
    }

    public static void QueueSignals(RemoteCalls calls, int pid, ThreadImage thread, IEnumerable<SignalInfo> shared)
    {
        foreach (var s in shared)
            calls.QueueSignal(pid, pid, s.Signal, s.Siginfo.Span, threadDirected: false);
        foreach (var s in thread.Pending)
            calls.QueueSignal(pid, thread.Tid, s.Signal, s.Siginfo.Span, threadDirected: true);
    }

    /// <summary>The saved registers, with an interrupted syscall set to run again (KERNEL.md pitfall 4).</summary>
    public static void RestoreRegisters(Tracee tracee, ThreadImage thread)
    {
        var regs = Registers.FromBytes(thread.Regs.Span);
        regs.PrepareSyscallRestart();
        tracee.SetXState(thread.Xstate.ToByteArray());
        tracee.SetRegisters(regs);
        tracee.SetSignalMask(thread.Sigmask);
    }
}
