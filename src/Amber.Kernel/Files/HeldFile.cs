using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// A file amber holds for a moment: one received in flight on a socket of another process, or
/// opened to be sent to one. <see cref="Fd"/> is its number in amber's own fd table, so it can be
/// described like any process's fd (/proc/self/fd) and compared with them (kcmp).
/// </summary>
public sealed class HeldFile : IDisposable
{
    internal HeldFile(SafeFdHandle handle) => Handle = handle;

    internal SafeFdHandle Handle { get; }

    public int Fd => Handle.Fd;

    /// <summary>Opens a file in amber as a process had it: path, open flags (without O_CREAT and friends), offset.</summary>
    public static unsafe HeldFile Open(string path, int flags, long offset)
    {
        var p = NativeString.Utf8Z(path);
        int fd;
        fixed (byte* pp = p)
            fd = Interop.Open(pp, (flags & ~OpenFlags.CreationOnly) | Interop.O_CLOEXEC | Interop.O_NOCTTY, 0);
        Errnos.Check(fd, "open", path);
        var held = new HeldFile(new SafeFdHandle(fd));
        if (offset != 0 && Interop.Lseek(fd, offset, 0) < 0)
        {
            held.Dispose();
            Errnos.Throw("lseek", path);
        }
        return held;
    }

    /// <summary>A copy of fd <paramref name="fd"/> of process <paramref name="pid"/> (pidfd_getfd): the same open file.</summary>
    public static HeldFile CopyOf(int pid, int fd) => new(ProcessFiles.GetFd(pid, fd));

    public void Dispose() => Handle.Dispose();
}
