using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>An flock(LOCK_EX) on a file held for this process's lifetime (one daemon per home): released when the process ends, however it ends.</summary>
public sealed class ExclusiveLock : IDisposable
{
    private readonly SafeFdHandle _fd;

    private ExclusiveLock(SafeFdHandle fd) => _fd = fd;

    /// <summary>Takes the lock; null if another process holds it.</summary>
    public static unsafe ExclusiveLock? TryTake(string path)
    {
        var p = NativeString.Utf8Z(path);
        int fd;
        fixed (byte* pp = p)
            fd = Interop.Open(pp, Interop.O_RDWR | Interop.O_CREAT | Interop.O_CLOEXEC,
                (int)(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead));
        Errnos.Check(fd, "open", path);
        var handle = new SafeFdHandle(fd);
        if (Interop.Flock(fd, Interop.LOCK_EX | Interop.LOCK_NB) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            if (errno == Errnos.EAGAIN)
                return null;
            throw new KernelCallException("flock", path, errno);
        }
        return new ExclusiveLock(handle);
    }

    public void Dispose() => _fd.Dispose();
}
