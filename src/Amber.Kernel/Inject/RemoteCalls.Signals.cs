using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Inject;

/// <summary>A signal disposition as the kernel stores it (struct sigaction for rt_sigaction).</summary>
public readonly record struct SignalDisposition(ulong Handler, ulong Flags, ulong Restorer, ulong Mask)
{
    /// <summary>SIG_IGN as a handler value.</summary>
    public const ulong Ignore = 1;

    public bool IsDefault => Handler == 0 && Flags == 0 && Restorer == 0 && Mask == 0;
}

public sealed partial class RemoteCalls
{
    public SignalDisposition GetSignalAction(int signal)
    {
        Call("rt_sigaction", SyscallNumbers.RtSigaction, (ulong)signal, 0, Scratch, 8);
        var act = Memory.Read<KernelSigaction>(Scratch);
        return new SignalDisposition(act.handler, act.flags, act.restorer, act.mask);
    }

    public void SetSignalAction(int signal, SignalDisposition disposition)
    {
        Memory.Write(Scratch, new KernelSigaction
        {
            handler = disposition.Handler, flags = disposition.Flags, restorer = disposition.Restorer, mask = disposition.Mask,
        });
        Call($"rt_sigaction({signal})", SyscallNumbers.RtSigaction, (ulong)signal, Scratch, 0, 8);
    }

    public (ulong Sp, int Flags, ulong Size) GetAltStack()
    {
        Call("sigaltstack", SyscallNumbers.Sigaltstack, 0, Scratch);
        var ss = Memory.Read<StackT>(Scratch);
        return (ss.ss_sp, ss.ss_flags, ss.ss_size);
    }

    public void SetAltStack(ulong sp, int flags, ulong size)
    {
        Memory.Write(Scratch, new StackT { ss_sp = sp, ss_flags = flags, ss_size = size });
        Call("sigaltstack", SyscallNumbers.Sigaltstack, Scratch, 0);
    }

    public ulong GetTidAddress()
    {
        Call("prctl(PR_GET_TID_ADDRESS)", SyscallNumbers.Prctl, Interop.PR_GET_TID_ADDRESS, Scratch);
        return Memory.Read<ulong>(Scratch);
    }

    public void SetTidAddress(ulong address) => Call("set_tid_address", SyscallNumbers.SetTidAddress, address);

    public (ulong Head, ulong Length) GetRobustList()
    {
        Call("get_robust_list", SyscallNumbers.GetRobustList, 0, Scratch, Scratch + 8);
        return (Memory.Read<ulong>(Scratch), Memory.Read<ulong>(Scratch + 8));
    }

    public void SetRobustList(ulong head, ulong length) => Call("set_robust_list", SyscallNumbers.SetRobustList, head, length);

    public void RegisterRseq(ulong address, uint length, uint flags, uint signature) =>
        Call("rseq", SyscallNumbers.Rseq, address, length, flags, signature);

    /// <summary>Queues a signal with its exact siginfo. Allowed for any si_code because the tracee sends it to itself.</summary>
    public void QueueSignal(int tgid, int tid, int signal, ReadOnlySpan<byte> siginfo, bool threadDirected)
    {
        Memory.Write(Scratch, siginfo);
        if (threadDirected)
            Call("rt_tgsigqueueinfo", SyscallNumbers.RtTgsigqueueinfo, (ulong)tgid, (ulong)tid, (ulong)signal, Scratch);
        else
            Call("rt_sigqueueinfo", SyscallNumbers.RtSigqueueinfo, (ulong)tgid, (ulong)signal, Scratch);
    }

    public static int SiginfoSignal(ReadOnlySpan<byte> siginfo) => MemoryMarshal.Read<int>(siginfo);
}
