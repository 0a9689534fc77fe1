using Amber.Image.Schema;
using Amber.Kernel.Inject;
using Amber.Kernel.Ptrace;

namespace Amber.Checkpoint.Resources.Threads;

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

    /// <summary>
    /// The other threads, each with its saved TID: an injected clone3 (CLONE_THREAD, set_tid) in the
    /// leader. A new thread starts stopped (PTRACE_O_TRACECLONE) at the trampoline, with all
    /// signals blocked like the leader at that point, and is then driven through the same trampoline.
    /// </summary>
    public static List<RestoredThread> CreateThreads(RemoteCalls leader, ProcessImage image, ulong trampoline, Restore.RestoreTree tree)
    {
        var threads = new List<RestoredThread> { new(leader.Injector.Thread, image.Threads[0], leader.Injector) };
        foreach (var thread in image.Threads.Skip(1))
        {
            int tid = leader.CloneWithId(thread.Tid, thread: true);
            if (tid != thread.Tid)
                throw new CheckpointException($"clone3 gave thread {tid}, not {thread.Tid}");
            // The leader is in the threads' namespace: the id it got back is theirs; amber's is the event's.
            int hostTid = leader.LastChild;
            tree.Made(thread.Tid, hostTid);
            var tracee = Tracee.Adopt(leader.Memory.Pid, hostTid);
            tracee.WaitForStop();
            threads.Add(new RestoredThread(tracee, thread, new SyscallInjector(tracee, trampoline, int3Follows: true)));
        }
        return threads;
    }

    /// <summary>The saved registers, with an interrupted syscall set to run again (docs/kernel.md, pitfall 4).</summary>
    public static void RestoreRegisters(Tracee tracee, ThreadImage thread)
    {
        var regs = Registers.FromBytes(thread.Regs.Span);
        regs.PrepareSyscallRestart();
        tracee.SetXState(thread.Xstate.ToByteArray());
        tracee.SetRegisters(regs);
        tracee.SetSignalMask(thread.Sigmask);
    }
}
