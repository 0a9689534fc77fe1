using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct file_clone_range (linux/fs.h), 32 bytes: the argument of FICLONERANGE.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct FileCloneRange
{
    public long src_fd;
    public ulong src_offset, src_length, dest_offset;

    public const int Size = 32;
}
