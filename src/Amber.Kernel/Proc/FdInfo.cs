namespace Amber.Kernel.Proc;

/// <summary>
/// /proc/PID/fdinfo/N: the file position, the open flags (octal in the file), the mount, and the
/// file locks held through this open file.
/// </summary>
public readonly record struct FdInfo(long Position, uint Flags, int MountId)
{
    public IReadOnlyList<FdLock> Locks { get; init; } = [];
}

/// <summary>
/// A "lock:" line of fdinfo, in the format of /proc/locks: "1: POSIX  ADVISORY  WRITE 31385 fe:00:11657249 20 29".
/// The kernel lists there the locks taken through this open file: flock and OFD locks (which belong
/// to the open file, in every process that has it) and the POSIX locks of this process.
/// <see cref="Pid"/> is -1 for an OFD lock; <see cref="End"/> is null for a lock to the end of the file ("EOF").
/// </summary>
public sealed record FdLock(string Kind, string Mode, string Access, int Pid, string Device, ulong Inode, long Start, long? End)
{
    public bool Write => Access == "WRITE";
}
