namespace Amber.Native;

internal static partial class Interop
{
    /// <summary>_IOW(0x94, 13, struct file_clone_range) of linux/fs.h: shares a range of one file's blocks with another (btrfs, xfs).</summary>
    internal static ulong FICLONERANGE => (1UL << 30) | ((ulong)FileCloneRange.Size << 16) | (0x94UL << 8) | 13;
}
