using System.Buffers.Binary;
using Amber.Native;

namespace Amber.Kernel.Inject;

public sealed partial class RemoteCalls
{
    /// <summary>flock(2) without waiting: the lock must be free, as it was for the process at the checkpoint.</summary>
    public void Flock(int fd, bool exclusive) =>
        Call($"flock({fd})", SyscallNumbers.Flock, (ulong)fd, (ulong)((exclusive ? Interop.LOCK_EX : Interop.LOCK_SH) | Interop.LOCK_NB));

    /// <summary>A byte-range lock, POSIX (owned by the process) or OFD (owned by the open file), without waiting.</summary>
    public void LockRange(int fd, bool openFileDescription, bool write, long start, long length)
    {
        // struct flock: short l_type, short l_whence, off_t l_start, off_t l_len, pid_t l_pid.
        Span<byte> flock = stackalloc byte[32];
        BinaryPrimitives.WriteInt16LittleEndian(flock, (short)(write ? Interop.F_WRLCK : Interop.F_RDLCK));
        BinaryPrimitives.WriteInt16LittleEndian(flock[2..], 0 /* SEEK_SET */);
        BinaryPrimitives.WriteInt64LittleEndian(flock[8..], start);
        BinaryPrimitives.WriteInt64LittleEndian(flock[16..], length);
        Memory.Write(Scratch, flock);
        Call($"fcntl({fd}, F_SETLK)", SyscallNumbers.Fcntl, (ulong)fd, (ulong)(openFileDescription ? Interop.F_OFD_SETLK : Interop.F_SETLK), Scratch);
    }
}
