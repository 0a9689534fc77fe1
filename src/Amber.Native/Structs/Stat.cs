using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct stat, x86_64 glibc (144 bytes).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Stat
{
    public ulong st_dev, st_ino, st_nlink;
    public uint st_mode, st_uid, st_gid, pad0;
    public ulong st_rdev;
    public long st_size, st_blksize, st_blocks;
    public long st_atime, st_atime_nsec, st_mtime, st_mtime_nsec, st_ctime, st_ctime_nsec;
    public long reserved0, reserved1, reserved2;

    public const int Size = 144;
}
