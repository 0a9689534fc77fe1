using Amber.Native;

namespace Amber.Kernel.Inject;

public sealed partial class RemoteCalls
{
    public const int ResourceCount = 16; // RLIMIT_CPU .. RLIMIT_RTTIME

    public (ulong Soft, ulong Hard) GetResourceLimit(int resource)
    {
        Call("prlimit64", SyscallNumbers.Prlimit64, 0, (ulong)resource, 0, Scratch);
        return (Memory.Read<ulong>(Scratch), Memory.Read<ulong>(Scratch + 8));
    }

    public void SetResourceLimit(int resource, ulong soft, ulong hard)
    {
        Memory.Write(Scratch, soft);
        Memory.Write(Scratch + 8, hard);
        Call($"prlimit64({resource})", SyscallNumbers.Prlimit64, 0, (ulong)resource, Scratch, 0);
    }

    /// <summary>setitimer timer <paramref name="which"/> as (interval, value) in microseconds; (0, 0) when disarmed.</summary>
    public (long IntervalUs, long ValueUs) GetIntervalTimer(int which)
    {
        Call("getitimer", SyscallNumbers.Getitimer, (ulong)which, Scratch);
        long Us(ulong at) => Memory.Read<long>(at) * 1_000_000 + Memory.Read<long>(at + 8);
        return (Us(Scratch), Us(Scratch + 16));
    }

    public void SetIntervalTimer(int which, long intervalUs, long valueUs)
    {
        Memory.Write(Scratch, intervalUs / 1_000_000);
        Memory.Write(Scratch + 8, intervalUs % 1_000_000);
        Memory.Write(Scratch + 16, valueUs / 1_000_000);
        Memory.Write(Scratch + 24, valueUs % 1_000_000);
        Call("setitimer", SyscallNumbers.Setitimer, (ulong)which, Scratch, 0);
    }

    /// <summary>
    /// Installs a seccomp filter for every thread (TSYNC). The program is written 4 KiB below the
    /// thread's stack pointer <paramref name="stackPointer"/>: memory the ABI leaves free.
    /// </summary>
    public void InstallSeccompFilter(ReadOnlySpan<byte> program, ulong stackPointer)
    {
        ulong filter = (stackPointer - 4096 - (ulong)program.Length) & ~15UL;
        ulong fprog = filter - 16;
        Memory.Write(filter, program);
        Span<byte> header = stackalloc byte[16];
        header.Clear();
        System.Buffers.Binary.BinaryPrimitives.WriteUInt16LittleEndian(header, (ushort)(program.Length / 8));
        System.Buffers.Binary.BinaryPrimitives.WriteUInt64LittleEndian(header[8..], filter);
        Memory.Write(fprog, header);
        Call("seccomp(SECCOMP_SET_MODE_FILTER)", SyscallNumbers.Seccomp, 1 /* SET_MODE_FILTER */, 1 /* FLAG_TSYNC */, fprog);
    }

    public bool GetChildSubreaper()
    {
        Call("prctl(PR_GET_CHILD_SUBREAPER)", SyscallNumbers.Prctl, Interop.PR_GET_CHILD_SUBREAPER, Scratch);
        return Memory.Read<int>(Scratch) != 0;
    }

    public void SetChildSubreaper() => Call("prctl(PR_SET_CHILD_SUBREAPER)", SyscallNumbers.Prctl, Interop.PR_SET_CHILD_SUBREAPER, 1);

    public bool GetNoNewPrivileges() => Call("prctl(PR_GET_NO_NEW_PRIVS)", SyscallNumbers.Prctl, Interop.PR_GET_NO_NEW_PRIVS) == 1;

    public void SetNoNewPrivileges() => Call("prctl(PR_SET_NO_NEW_PRIVS)", SyscallNumbers.Prctl, Interop.PR_SET_NO_NEW_PRIVS, 1);
}
