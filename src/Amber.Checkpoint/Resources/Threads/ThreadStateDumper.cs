using Amber.Checkpoint.Freeze;
using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Inject;
using Amber.Kernel.Memory;
using Amber.Kernel.Proc;
using Google.Protobuf;

namespace Amber.Checkpoint.Resources.Threads;

/// <summary>
/// What only the process itself knows (signal handlers, alternate stacks, tid address, robust list,
/// brk), asked by syscalls injected into each stopped thread, plus what ptrace reads directly
/// (registers, xstate, rseq, queued signals). A scratch page is mapped for the answers and unmapped
/// before the memory is read, so the dump sees the layout the program had.
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
            // Only signals with a handler or ignored are asked about (one injection each), and SIGCHLD,
            // whose flags matter even under SIG_DFL (SA_NOCLDWAIT); other flags of SIG_DFL change nothing.
            var status = ProcFs.ReadStatus(frozen.Pid);
            ulong asked = status.SigCaught | status.SigIgnored | Signals.Bit(Signals.SIGCHLD);
            for (int sig = 1; sig <= Signals.Count; sig++)
            {
                if (sig is Signals.SIGKILL or Signals.SIGSTOP || (asked & Signals.Bit(sig)) == 0)
                    continue;
                var act = calls.GetSignalAction(sig);
                if (!act.IsDefault)
                    image.Sigactions.Add(new SignalAction { Signal = sig, Handler = act.Handler, Flags = act.Flags, Restorer = act.Restorer, Mask = act.Mask });
            }
            image.Mm.Brk = calls.Brk(0);
            image.Creds.Dumpable = calls.GetDumpable();
            image.NoNewPrivs = calls.GetNoNewPrivileges();
            image.ChildSubreaper = calls.GetChildSubreaper();
            image.MembarrierRegistrations = (uint)calls.GetMembarrierRegistrations();
            foreach (var t in PosixTimerInfo.Parse(File.ReadAllText($"/proc/{frozen.Pid}/timers")))
            {
                var (interval, value) = calls.GetPosixTimer(t.Id);
                image.PosixTimers.Add(new PosixTimer
                {
                    Id = t.Id, Clock = t.Clock, Signal = t.Signal, Value = t.Value, Notify = t.Notify, NotifyTid = t.NotifyTid,
                    IntervalNs = interval, ValueNs = value,
                });
            }
            foreach (var filter in leader.Tracee.GetSeccompFilters())
                image.SeccompFilters.Add(Google.Protobuf.ByteString.CopyFrom(filter));
            var limits = ProcFs.ReadLimits(frozen.Pid);
            if (limits.Length != RemoteCalls.ResourceCount)
                throw new CheckpointException($"process {frozen.Pid}: /proc/{frozen.Pid}/limits lists {limits.Length} resources, expected {RemoteCalls.ResourceCount}");
            for (int resource = 0; resource < limits.Length; resource++)
                image.Rlimits.Add(new ResourceLimit { Resource = resource, Soft = limits[resource].Soft, Hard = limits[resource].Hard });
            for (int which = 0; which < 3; which++)
            {
                var (interval, value) = calls.GetIntervalTimer(which);
                if (interval != 0 || value != 0)
                    image.Itimers.Add(new IntervalTimer { Which = which, IntervalUs = interval, ValueUs = value });
            }
            foreach (var info in leader.Tracee.PeekPendingSignals(shared: true))
                image.SharedPending.Add(new SignalInfo { Signal = RemoteCalls.SiginfoSignal(info), Siginfo = ByteString.CopyFrom(info) });

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
            Creds = new Credentials { Uids = { status.Uids }, Gids = { status.Gids }, Groups = { status.Groups }, Capabilities = { status.Capabilities } },
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
        foreach (var info in tracee.PeekPendingSignals(shared: false))
            image.Pending.Add(new SignalInfo { Signal = RemoteCalls.SiginfoSignal(info), Siginfo = ByteString.CopyFrom(info) });
        return image;
    }
}
