using Amber.Native;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

/// <summary>Sharing blocks between two files instead of copying them (FICLONERANGE: btrfs, xfs).</summary>
internal static class Reflink
{
    /// <summary>
    /// Makes [toOffset, toOffset + length) of <paramref name="to"/> share the blocks of
    /// [fromOffset, fromOffset + length) of <paramref name="from"/>. False where the file systems
    /// cannot (another file system, no reflinks, unaligned): nothing was done, copy instead.
    /// </summary>
    public static unsafe bool TryClone(SafeFileHandle from, ulong fromOffset, SafeFileHandle to, ulong toOffset, ulong length)
    {
        bool addedFrom = false, addedTo = false;
        try
        {
            // Raw fds go to the ioctl: hold references so neither handle is closed meanwhile.
            from.DangerousAddRef(ref addedFrom);
            to.DangerousAddRef(ref addedTo);
            var range = new FileCloneRange { src_fd = from.DangerousGetHandle(), src_offset = fromOffset, src_length = length, dest_offset = toOffset };
            return Interop.Ioctl((int)to.DangerousGetHandle(), Interop.FICLONERANGE, &range) == 0;
        }
        finally
        {
            if (addedFrom)
                from.DangerousRelease();
            if (addedTo)
                to.DangerousRelease();
        }
    }
}
