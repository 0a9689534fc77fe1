using Amber.Native;

namespace Amber.Kernel.Inject;

public sealed partial class RemoteCalls
{
    public ulong Mmap(ulong address, ulong length, int prot, int flags, int fd = -1, ulong offset = 0) =>
        (ulong)Call("mmap", SyscallNumbers.Mmap, address, length, (ulong)prot, (ulong)flags, (ulong)(long)fd, offset);

    public void Munmap(ulong address, ulong length) => Call("munmap", SyscallNumbers.Munmap, address, length);

    public void Mprotect(ulong address, ulong length, int prot) => Call("mprotect", SyscallNumbers.Mprotect, address, length, (ulong)prot);

    public void MremapFixed(ulong from, ulong length, ulong to) =>
        Call("mremap", SyscallNumbers.Mremap, from, length, length, Interop.MREMAP_MAYMOVE | Interop.MREMAP_FIXED, to);

    /// <summary>Faults a range in as one bulk operation: first touch page by page is ~6× slower here.</summary>
    public void PopulateWrite(ulong address, ulong length) =>
        Call("madvise(MADV_POPULATE_WRITE)", SyscallNumbers.Madvise, address, length, Interop.MADV_POPULATE_WRITE);

    /// <summary>madvise(2): one of <see cref="Advice"/>.</summary>
    public void Madvise(ulong address, ulong length, int advice) =>
        Call($"madvise({Advice.Name(advice)})", SyscallNumbers.Madvise, address, length, (ulong)advice);

    /// <summary>mlock2(2), with MLOCK_ONFAULT: only pages already there, and those faulted in later, are locked.</summary>
    public void Mlock2(ulong address, ulong length, bool onFault) =>
        Call(onFault ? "mlock2(MLOCK_ONFAULT)" : "mlock2", SyscallNumbers.Mlock2, address, length, onFault ? (ulong)Interop.MLOCK_ONFAULT : 0);

    /// <summary>mseal(2) (6.10): the range can no longer be unmapped, moved, mprotect'ed or discarded.</summary>
    public void Mseal(ulong address, ulong length) => Call("mseal", SyscallNumbers.Mseal, address, length, 0);

    public ulong Brk(ulong address) => (ulong)Call("brk", SyscallNumbers.Brk, address);

    /// <summary>pread64 straight into the tracee's memory: the kernel copies from the image file into place.</summary>
    public long Pread(int fd, ulong address, ulong length, ulong offset) =>
        Call("pread64", SyscallNumbers.Pread64, (ulong)fd, address, length, offset);

    /// <summary>
    /// userfaultfd(2) in the process. For write tracking, which needs no fault handling: user-mode
    /// faults only, allowed without privilege (plain where the kernel refuses that flag). For missing
    /// pages (<paramref name="kernelFaults"/>), the kernel's own accesses must wait for their page too
    /// (a read(2) into memory not yet there): that needs CAP_SYS_PTRACE in the process, which a
    /// restore still has at that point.
    /// </summary>
    public int Userfaultfd(bool kernelFaults = false)
    {
        const int flags = Interop.O_CLOEXEC | Interop.O_NONBLOCK;
        long fd = Injector.Call(SyscallNumbers.Userfaultfd, (ulong)(flags | (kernelFaults ? 0 : Interop.UFFD_USER_MODE_ONLY)));
        if (fd == -Errnos.EINVAL && !kernelFaults)
            fd = Injector.Call(SyscallNumbers.Userfaultfd, flags);
        if (fd < 0)
            throw new KernelCallException("userfaultfd (injected)", Injector.Thread.Name, (int)-fd);
        return (int)fd;
    }
}

/// <summary>mmap(2) protection and flag bits, for callers above the interop layer.</summary>
public static class Mman
{
    public const int ProtNone = Interop.PROT_NONE;
    public const int ProtRead = Interop.PROT_READ;
    public const int ProtWrite = Interop.PROT_WRITE;
    public const int ProtExec = Interop.PROT_EXEC;
    public const int MapShared = Interop.MAP_SHARED;
    public const int MapPrivate = Interop.MAP_PRIVATE;
    public const int MapAnonymous = Interop.MAP_ANONYMOUS;
    public const int MapGrowsDown = Interop.MAP_GROWSDOWN;
    public const int MapNoReserve = Interop.MAP_NORESERVE;
    public const int MapFixedNoReplace = Interop.MAP_FIXED_NOREPLACE;
    public const int MapDroppable = Interop.MAP_DROPPABLE;
}

/// <summary>madvise(2) advice that leaves a mark on a mapping (its VmFlags), for callers above the interop layer.</summary>
public static class Advice
{
    public const int Random = Interop.MADV_RANDOM;
    public const int Sequential = Interop.MADV_SEQUENTIAL;
    public const int DontFork = Interop.MADV_DONTFORK;
    public const int Mergeable = Interop.MADV_MERGEABLE;
    public const int HugePage = Interop.MADV_HUGEPAGE;
    public const int NoHugePage = Interop.MADV_NOHUGEPAGE;
    public const int DontDump = Interop.MADV_DONTDUMP;
    public const int WipeOnFork = Interop.MADV_WIPEONFORK;
    public const int GuardInstall = Interop.MADV_GUARD_INSTALL;
    public const int GuardRemove = Interop.MADV_GUARD_REMOVE;

    public static string Name(int advice) => advice switch
    {
        Random => "MADV_RANDOM",
        Sequential => "MADV_SEQUENTIAL",
        DontFork => "MADV_DONTFORK",
        Mergeable => "MADV_MERGEABLE",
        HugePage => "MADV_HUGEPAGE",
        NoHugePage => "MADV_NOHUGEPAGE",
        DontDump => "MADV_DONTDUMP",
        WipeOnFork => "MADV_WIPEONFORK",
        GuardInstall => "MADV_GUARD_INSTALL",
        GuardRemove => "MADV_GUARD_REMOVE",
        Interop.MADV_POPULATE_WRITE => "MADV_POPULATE_WRITE",
        _ => $"advice {advice}",
    };
}
