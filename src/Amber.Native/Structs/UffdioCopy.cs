using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct uffdio_copy (linux/userfaultfd.h), 40 bytes: dst, src, len, mode, and what was copied (or -errno).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioCopy
{
    public ulong dst, src, len, mode;
    public long copy;

    public const int Size = 40;
}

/// <summary>struct uffdio_range (linux/userfaultfd.h), 16 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioRange
{
    public ulong start, len;

    public const int Size = 16;
}

/// <summary>struct uffdio_zeropage (linux/userfaultfd.h), 32 bytes: a range, the mode, and what was zeroed (or -errno).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioZeropage
{
    public ulong start, len, mode;
    public long zeropage;

    public const int Size = 32;
}

/// <summary>
/// struct uffd_msg (linux/userfaultfd.h), 32 bytes: the event, then its arguments (a union of
/// 24 bytes: pagefault {flags, address, ptid}; fork {ufd}; remap {from, to, len}; remove and unmap {start, end}).
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdMsg
{
    public byte evt;
    public byte reserved1;
    public ushort reserved2;
    public uint reserved3;
    public ulong arg0, arg1, arg2;

    public const int Size = 32;
}
