using Amber.Checkpoint.Freeze;
using Amber.Checkpoint.Resources.Cred;
using Amber.Checkpoint.Resources.Limits;
using Amber.Checkpoint.Resources.Scheduling;
using Amber.Checkpoint.Resources.SignalHandling;
using Amber.Checkpoint.Resources.Timers;
using Amber.Image.Schema;
using Amber.Kernel.Inject;
using Amber.Kernel.Memory;
using Amber.Kernel.Proc;
using Google.Protobuf;

namespace Amber.Checkpoint.Resources.Threads;

/// <summary>
/// What only the process itself knows (signal handlers, alternate stacks, tid address, robust list,
/// brk), asked by syscalls injected into each stopped thread, plus what ptrace reads directly
/// (registers, xstate, rseq, queued signals). A scratch page is mapped for the answers and unmapped
/// before the memory is read, so the dump sees the layout the program had. The one session of
/// injected calls a process gets: what other resources need asked of the process is asked through it
/// (signal actions, timers, limits — each in its own home), so the page is mapped once.
/// </summary>
public static class ThreadStateDumper
{
    private const int ScratchSize = 4096;

    public static void Dump(FrozenProcess frozen, RemoteMemory memory, IReadOnlyList<MapsEntry> maps, ProcessImage image)
    {
        ulong instruction = VdsoSyscall.Find(maps, memory, frozen.Pid);
        var leader = frozen.Leader;
        var leaderInjector = new SyscallInjector(leader.Tracee, instruction, int3Follows: false, leader.Registers);
        var first = new RemoteCalls(leaderInjector, memory, 0, 0);
        ulong scratch = first.Mmap(0, ScratchSize, Mman.ProtRead | Mman.ProtWrite, Mman.MapPrivate | Mman.MapAnonymous);
        var calls = new RemoteCalls(leaderInjector, memory, scratch, ScratchSize);
        try
        {
            SignalActions.Dump(calls, ProcFs.ReadStatus(frozen.Pid), image);
            image.Mm.Brk = calls.Brk(0);
            image.Creds.Dumpable = calls.GetDumpable();
            image.MembarrierRegistrations = (uint)calls.GetMembarrierRegistrations();
            ProcessTimers.Dump(calls, frozen.Pid, image);
            foreach (var filter in leader.Tracee.GetSeccompFilters())
                image.SeccompFilters.Add(Google.Protobuf.ByteString.CopyFrom(filter));
            ProcessLimits.Dump(calls, frozen.Pid, image);
            PendingSignals.DumpShared(leader.Tracee, image);

            foreach (var thread in frozen.Threads)
            {
                var injector = thread == leader ? leaderInjector : new SyscallInjector(thread.Tracee, instruction, false, thread.Registers);
                var threadCalls = calls.WithInjector(injector);
                image.Threads.Add(DumpThread(frozen.Pid, thread, threadCalls));
                thread.DeferredSignal = injector.DeferredSignal;
            }
        }
        finally
        {
            calls.Munmap(scratch, ScratchSize);
            leader.DeferredSignal = leaderInjector.DeferredSignal;
        }
    }

    private static ThreadImage DumpThread(int pid, FrozenThread thread, RemoteCalls calls)
    {
        var tracee = thread.Tracee;
        var (sp, flags, size) = calls.GetAltStack();
        var (head, length) = calls.GetRobustList();
        var status = ProcFs.ReadThreadStatus(pid, thread.Tid);
        var image = new ThreadImage
        {
            Creds = ProcessCredentials.Dump(status),
            ParentDeathSignal = calls.GetParentDeathSignal(),
            Tid = thread.Tid,
            Comm = ProcFs.ReadComm(pid, thread.Tid),
            Regs = ByteString.CopyFrom(thread.Registers.ToBytes()),
            Xstate = ByteString.CopyFrom(tracee.GetXState()),
            Sigmask = thread.SignalMask,
            Altstack = new AltStack { Sp = sp, Flags = flags, Size = size },
            TidAddress = calls.GetTidAddress(),
            RobustListHead = head,
            RobustListLen = length,
        };
        if (tracee.GetRseqConfiguration() is { } rseq)
            image.Rseq = new Rseq { Address = rseq.Address, Length = rseq.Length, Flags = rseq.Flags, Signature = rseq.Signature };
        PendingSignals.DumpThread(tracee, image);
        ThreadSettings.Dump(calls, pid, thread.Tid, status, image);
        return image;
    }
}
