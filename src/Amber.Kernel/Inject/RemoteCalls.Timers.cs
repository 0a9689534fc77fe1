using System.Buffers.Binary;
using Amber.Native;

namespace Amber.Kernel.Inject;

public sealed partial class RemoteCalls
{
    /// <summary>timer_gettime: (interval, time to the next expiration) in nanoseconds.</summary>
    public (long IntervalNs, long ValueNs) GetPosixTimer(int id)
    {
        Call($"timer_gettime({id})", SyscallNumbers.TimerGettime, (ulong)id, Scratch);
        long Ns(ulong at) => Memory.Read<long>(at) * 1_000_000_000 + Memory.Read<long>(at + 8);
        return (Ns(Scratch), Ns(Scratch + 16));
    }

    /// <summary>timer_create with the given id (PR_TIMER_CREATE_RESTORE_IDS), then armed as it was.</summary>
    public void CreatePosixTimer(int id, int clock, int signal, ulong value, int notify, int notifyTid, long intervalNs, long valueNs)
    {
        Span<byte> sigevent = stackalloc byte[64];
        sigevent.Clear();
        BinaryPrimitives.WriteUInt64LittleEndian(sigevent, value);
        BinaryPrimitives.WriteInt32LittleEndian(sigevent[8..], signal);
        BinaryPrimitives.WriteInt32LittleEndian(sigevent[12..], notify);
        BinaryPrimitives.WriteInt32LittleEndian(sigevent[16..], notifyTid);
        Memory.Write(Scratch, sigevent);
        Memory.Write(Scratch + 64, id);
        Call("prctl(PR_TIMER_CREATE_RESTORE_IDS)", SyscallNumbers.Prctl, Interop.PR_TIMER_CREATE_RESTORE_IDS, 1);
        try
        {
            Call($"timer_create({id})", SyscallNumbers.TimerCreate, (ulong)clock, Scratch, Scratch + 64);
        }
        finally
        {
            Call("prctl(PR_TIMER_CREATE_RESTORE_IDS)", SyscallNumbers.Prctl, Interop.PR_TIMER_CREATE_RESTORE_IDS, 0);
        }
        int created = Memory.Read<int>(Scratch + 64);
        if (created != id)
            throw new InjectionException($"timer_create gave timer {created}, not {id}");
        if (intervalNs == 0 && valueNs == 0)
            return;
        WriteTimerSpec(intervalNs, valueNs);
        Call($"timer_settime({id})", SyscallNumbers.TimerSettime, (ulong)id, 0, Scratch, 0);
    }

    /// <summary>
    /// A struct itimerspec at <see cref="Scratch"/>, for timer_settime and timerfd_settime: the
    /// interval, then the first expiration, each as seconds and nanoseconds.
    /// </summary>
    private void WriteTimerSpec(long intervalNs, long valueNs)
    {
        Span<byte> spec = stackalloc byte[32];
        BinaryPrimitives.WriteInt64LittleEndian(spec, intervalNs / 1_000_000_000);
        BinaryPrimitives.WriteInt64LittleEndian(spec[8..], intervalNs % 1_000_000_000);
        BinaryPrimitives.WriteInt64LittleEndian(spec[16..], valueNs / 1_000_000_000);
        BinaryPrimitives.WriteInt64LittleEndian(spec[24..], valueNs % 1_000_000_000);
        Memory.Write(Scratch, spec);
    }
}
