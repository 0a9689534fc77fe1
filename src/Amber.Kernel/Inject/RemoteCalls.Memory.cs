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

    public ulong Brk(ulong address) => (ulong)Call("brk", SyscallNumbers.Brk, address);

    /// <summary>pread64 straight into the tracee's memory: the kernel copies from the image file into place.</summary>
    public long Pread(int fd, ulong address, ulong length, ulong offset) =>
        Call("pread64", SyscallNumbers.Pread64, (ulong)fd, address, length, offset);

    /// <summary>
    /// userfaultfd(2) in the process (for write tracking, which needs no fault handling: user-mode
    /// faults only, allowed without privilege; plain where the kernel refuses that flag).
    /// </summary>
    public int Userfaultfd()
    {
        const int flags = Interop.O_CLOEXEC | Interop.O_NONBLOCK;
        long fd = Injector.Call(SyscallNumbers.Userfaultfd, (ulong)(flags | Interop.UFFD_USER_MODE_ONLY));
        if (fd == -Errnos.EINVAL)
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
    public const int MapFixed = Interop.MAP_FIXED;

}
