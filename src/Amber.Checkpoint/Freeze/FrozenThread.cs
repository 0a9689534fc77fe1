using Amber.Kernel.Ptrace;

namespace Amber.Checkpoint.Freeze;

/// <summary>A thread held in a ptrace-stop, with the state it must get back if it is resumed.</summary>
public sealed class FrozenThread(Tracee tracee, Registers registers, ulong signalMask)
{
    public Tracee Tracee { get; } = tracee;

    public int Tid => Tracee.Tid;

    /// <summary>The registers at the stop; put back before detach.</summary>
    public Registers Registers { get; } = registers;

    public ulong SignalMask { get; } = signalMask;

    /// <summary>A signal dequeued while Amber worked in the thread; delivered on detach.</summary>
    public int DeferredSignal { get; set; }
}
