using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// Looks at another process's open files from outside: whether two fds are one open file
/// description (kcmp), and what is queued in a pipe (a copy of its read end through pidfd_getfd,
/// then tee(2), which duplicates pipe contents without consuming them).
/// </summary>
public static class ProcessFiles
{
    public static bool SameDescription(int pid, int fd1, int fd2) => SameDescription(pid, fd1, pid, fd2);

    public static bool SameDescription(int pid1, int fd1, int pid2, int fd2)
    {
        int rv = Interop.Kcmp(pid1, pid2, Interop.KCMP_FILE, fd1, fd2);
        if (rv < 0)
            Errnos.Throw("kcmp(KCMP_FILE)", $"fd {fd1} of process {pid1} and fd {fd2} of process {pid2}");
        return rv == 0;
    }

    /// <summary>
    /// Whether fd <paramref name="fd"/> of <paramref name="pid"/> is the file an epoll set watches as
    /// its <paramref name="occurrence"/>-th target registered under number <paramref name="targetFd"/>
    /// (KCMP_EPOLL_TFD): the set keeps watching a file after the fd it was added through is closed.
    /// </summary>
    public static unsafe bool IsEpollTarget(int pid, int fd, int epollFd, int targetFd, int occurrence)
    {
        uint* slot = stackalloc uint[3];
        slot[0] = (uint)epollFd;
        slot[1] = (uint)targetFd;
        slot[2] = (uint)occurrence;
        return Interop.Kcmp(pid, pid, Interop.KCMP_EPOLL_TFD, fd, (long)slot) == 0;
    }

    /// <summary>Whether two processes share one fd table (clone with CLONE_FILES, without being threads of one process).</summary>
    public static bool ShareFdTable(int pid1, int pid2) => Interop.Kcmp(pid1, pid2, Interop.KCMP_FILES, 0, 0) == 0;

    /// <summary>The capacity of a pipe (F_GETPIPE_SZ), through any of its ends.</summary>
    public static int PipeCapacity(int pid, int fd)
    {
        using var remote = GetFd(pid, fd);
        return Errnos.Check(Interop.Fcntl(remote.Fd, Interop.F_GETPIPE_SZ, 0), "fcntl(F_GETPIPE_SZ)", $"fd {fd} of process {pid}");
    }

    /// <summary>The bytes queued in the pipe whose read end is <paramref name="readFd"/>, left in place, and its capacity.</summary>
    public static (byte[] Data, int Capacity) PeekPipe(int pid, int readFd)
    {
        var (data, capacity, _) = PeekPipePackets(pid, readFd);
        return (data, capacity);
    }

    /// <summary>
    /// As <see cref="PeekPipe"/>, and how the bytes are read back: a read ends at the end of a packet
    /// of a pipe in packet mode (written with O_DIRECT), so these are its packets' sizes.
    /// </summary>
    public static unsafe (byte[] Data, int Capacity, List<int> Reads) PeekPipePackets(int pid, int readFd)
    {
        var reads = new List<int>();
        using var remote = GetFd(pid, readFd);
        int capacity = Errnos.Check(Interop.Fcntl(remote.Fd, Interop.F_GETPIPE_SZ, 0), "fcntl(F_GETPIPE_SZ)", $"fd {readFd} of process {pid}");
        int* fds = stackalloc int[2];
        Errnos.Check(Interop.Pipe2(fds, Interop.O_CLOEXEC | Interop.O_NONBLOCK), "pipe2", "amber");
        using var ourRead = new SafeFdHandle(fds[0]);
        using var ourWrite = new SafeFdHandle(fds[1]);
        // Ours must hold everything theirs does; 1 MiB (pipe-max-size) is the most an unprivileged pipe has.
        Interop.Fcntl(ourWrite.Fd, Interop.F_SETPIPE_SZ, capacity);
        nint copied;
        do
        {
            copied = Interop.Tee(remote.Fd, ourWrite.Fd, (nuint)capacity, Interop.SPLICE_F_NONBLOCK);
        }
        while (copied < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR);
        if (copied < 0)
        {
            if (Marshal.GetLastPInvokeError() == Errnos.EAGAIN)
                return ([], capacity, reads);
            Errnos.Throw("tee", $"pipe fd {readFd} of process {pid}");
        }
        var data = new byte[copied];
        fixed (byte* p = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                nint n = Interop.Read(ourRead.Fd, p + done, (nuint)(data.Length - done));
                if (n <= 0)
                    Errnos.Throw("read", "amber's copy of a pipe");
                done += (int)n;
                reads.Add((int)n);
            }
        }
        return (data, capacity, reads);
    }

    /// <summary>The bytes queued in a named FIFO, through a read end amber opens for the purpose (O_RDWR never blocks).</summary>
    public static unsafe (byte[] Data, int Capacity) PeekFifo(string path)
    {
        var p = NativeString.Utf8Z(path);
        int fd;
        fixed (byte* pp = p)
            fd = Interop.Open(pp, Interop.O_RDWR | Interop.O_NONBLOCK | Interop.O_CLOEXEC, 0);
        Errnos.Check(fd, "open", $"FIFO {path}");
        using var own = new SafeFdHandle(fd);
        return PeekPipe(Environment.ProcessId, fd);
    }

    /// <summary>
    /// Writes bytes through an fd of another process (a copy of it): refills a fresh pipe through its
    /// write end, or a socket's peer queue through the other end of the pair.
    /// </summary>
    public static unsafe void WriteThrough(int pid, int writeFd, ReadOnlySpan<byte> data)
    {
        using var remote = GetFd(pid, writeFd);
        fixed (byte* p = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                nint n = Interop.Write(remote.Fd, p + done, (nuint)(data.Length - done));
                if (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR)
                    continue;
                if (n <= 0)
                    Errnos.Throw("write", $"fd {writeFd} of process {pid}");
                done += (int)n;
            }
        }
    }

    /// <summary>Bytes waiting to be read (FIONREAD) on an fd of another process.</summary>
    public static unsafe int QueuedBytes(int pid, int fd)
    {
        using var copy = GetFd(pid, fd);
        int queued = 0;
        return Interop.Ioctl(copy.Fd, Interop.FIONREAD, &queued) < 0 ? 0 : queued;
    }

    /// <summary>
    /// Throws away what waits to be read on an fd of another process (through a copy: the same open
    /// file); only what FIONREAD counts, so a blocking fd never blocks here.
    /// </summary>
    public static unsafe void Drain(int pid, int fd)
    {
        using var copy = GetFd(pid, fd);
        int queued = 0;
        if (Interop.Ioctl(copy.Fd, Interop.FIONREAD, &queued) < 0 || queued <= 0)
            return;
        var buffer = new byte[queued];
        fixed (byte* b = buffer)
        {
            if (Interop.Read(copy.Fd, b, (nuint)queued) < 0)
                Errnos.Throw("read", $"fd {fd} of process {pid}");
        }
    }

    internal static SafeFdHandle GetFd(int pid, int fd)
    {
        int pidfd = Interop.PidfdOpen(pid, 0);
        if (pidfd < 0)
            Errnos.Throw("pidfd_open", $"process {pid}");
        using var pidHandle = new SafeFdHandle(pidfd);
        int copy = Interop.PidfdGetfd(pidfd, fd, 0);
        if (copy < 0)
            Errnos.Throw("pidfd_getfd", $"fd {fd} of process {pid}");
        return new SafeFdHandle(copy);
    }
}
