using Amber.Native;
using Microsoft.Win32.SafeHandles;

namespace Amber.Kernel.Files;

/// <summary>Opens files by path the way a checkpoint reads them: never through a symlink at the end, and unseen.</summary>
public static class FileOpener
{
    /// <summary>
    /// Opens a file for reading without following a symlink at its end, and without touching its
    /// access time (O_NOATIME, where we may: as its owner or with CAP_FOWNER).
    /// </summary>
    public static unsafe SafeFileHandle OpenReadNoFollow(string path)
    {
        const int flags = Interop.O_RDONLY | Interop.O_NOFOLLOW | Interop.O_CLOEXEC;
        int fd;
        fixed (byte* p = NativeString.Utf8Z(path))
        {
            fd = Interop.Open(p, flags | Interop.O_NOATIME, 0);
            if (fd < 0 && System.Runtime.InteropServices.Marshal.GetLastPInvokeError() == Errnos.EPERM)
                fd = Interop.Open(p, flags, 0);
        }
        Errnos.Check(fd, "open", path);
        return new SafeFileHandle(fd, ownsHandle: true);
    }
}
