using Amber.Native;

namespace Amber.Kernel.Inject;

/// <summary>
/// A thread's scheduling and its per-thread prctl settings, set by the thread itself (and asked where
/// /proc does not show them: the policy's SCHED_RESET_ON_FORK, the prctl ones).
/// </summary>
public sealed partial class RemoteCalls
{
    /// <summary>setpriority(PRIO_PROCESS, 0): the calling thread's nice value.</summary>
    public void SetNice(int nice) => Call($"setpriority({nice})", SyscallNumbers.Setpriority, Interop.PRIO_PROCESS, 0, (ulong)(long)nice);

    /// <summary>The thread's policy, SCHED_RESET_ON_FORK or'ed in.</summary>
    public int GetPolicy() => (int)Call("sched_getscheduler", SyscallNumbers.SchedGetscheduler, 0);

    public void SetScheduler(int policy, int priority)
    {
        Memory.Write(Scratch, priority);
        Call($"sched_setscheduler({policy}, {priority})", SyscallNumbers.SchedSetscheduler, 0, (ulong)(uint)policy, Scratch);
    }

    public void SetAffinity(ReadOnlySpan<byte> mask)
    {
        Memory.Write(Scratch, mask);
        Call("sched_setaffinity", SyscallNumbers.SchedSetaffinity, 0, (ulong)mask.Length, Scratch);
    }

    public void SetIoPriority(int priority) => Call($"ioprio_set({priority:x})", SyscallNumbers.IoprioSet, Interop.IOPRIO_WHO_PROCESS, 0, (ulong)(uint)priority);

    public ulong GetTimerSlack() => (ulong)Call("prctl(PR_GET_TIMERSLACK)", SyscallNumbers.Prctl, Interop.PR_GET_TIMERSLACK);

    public void SetTimerSlack(ulong nanoseconds) => Call("prctl(PR_SET_TIMERSLACK)", SyscallNumbers.Prctl, Interop.PR_SET_TIMERSLACK, nanoseconds);

    /// <summary>The machine-check kill policy: 0 late, 1 early, 2 the system's default.</summary>
    public int GetMceKill() => (int)Call("prctl(PR_MCE_KILL_GET)", SyscallNumbers.Prctl, Interop.PR_MCE_KILL_GET, 0, 0, 0, 0);

    /// <summary>Sets the machine-check kill policy (<see cref="GetMceKill"/>'s values; 2 clears the thread's own).</summary>
    public void SetMceKill(int policy) =>
        Call("prctl(PR_MCE_KILL)", SyscallNumbers.Prctl, Interop.PR_MCE_KILL, policy == 2 ? 0UL /* CLEAR */ : 1UL /* SET */, policy == 2 ? 0UL : (ulong)policy, 0, 0);

    public bool GetKeepCapabilities() => Call("prctl(PR_GET_KEEPCAPS)", SyscallNumbers.Prctl, Interop.PR_GET_KEEPCAPS) == 1;

    /// <summary>Whether transparent huge pages are disabled for the process's memory (per mm).</summary>
    public bool GetThpDisabled() => Call("prctl(PR_GET_THP_DISABLE)", SyscallNumbers.Prctl, Interop.PR_GET_THP_DISABLE, 0, 0, 0, 0) == 1;

    public void SetThpDisabled() => Call("prctl(PR_SET_THP_DISABLE)", SyscallNumbers.Prctl, Interop.PR_SET_THP_DISABLE, 1, 0, 0, 0);

    /// <summary>The memory-deny-write-execute flags (PR_GET_MDWE: PR_MDWE_REFUSE_EXEC_GAIN, PR_MDWE_NO_INHERIT); 0 on a kernel without them (before 6.3).</summary>
    public uint GetMemoryDenyWriteExecute() => Injector.Call(SyscallNumbers.Prctl, Interop.PR_GET_MDWE, 0, 0, 0, 0) is var flags and >= 0 ? (uint)flags : 0;

    /// <summary>PR_SET_MDWE: from then on no mapping of the process may become executable once writable (it cannot be undone).</summary>
    public void SetMemoryDenyWriteExecute(uint flags) => Call("prctl(PR_SET_MDWE)", SyscallNumbers.Prctl, Interop.PR_SET_MDWE, flags, 0, 0, 0);
}
