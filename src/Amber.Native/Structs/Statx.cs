using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>
/// struct statx (linux/stat.h), 256 bytes, for statx(2): one layout on every architecture, unlike
/// struct stat. The fields are those of linux 6.1; the rest of the 256 bytes is the kernel's room for
/// newer ones (filled only when asked for in the mask).
/// </summary>
[StructLayout(LayoutKind.Sequential, Size = Statx.Size)]
internal struct Statx
{
    public uint stx_mask, stx_blksize;
    public ulong stx_attributes;
    public uint stx_nlink, stx_uid, stx_gid;
    public ushort stx_mode, spare0;
    public ulong stx_ino, stx_size, stx_blocks, stx_attributes_mask;

    // Four struct statx_timestamp { __s64 tv_sec; __u32 tv_nsec; __s32 __reserved; }.
    public long stx_atime_sec;
    public uint stx_atime_nsec;
    public int stx_atime_reserved;
    public long stx_btime_sec;
    public uint stx_btime_nsec;
    public int stx_btime_reserved;
    public long stx_ctime_sec;
    public uint stx_ctime_nsec;
    public int stx_ctime_reserved;
    public long stx_mtime_sec;
    public uint stx_mtime_nsec;
    public int stx_mtime_reserved;

    public uint stx_rdev_major, stx_rdev_minor, stx_dev_major, stx_dev_minor;
    public ulong stx_mnt_id;
    public uint stx_dio_mem_align, stx_dio_offset_align;

    public const int Size = 256;
}
