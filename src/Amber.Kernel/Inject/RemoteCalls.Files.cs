using Amber.Native;

namespace Amber.Kernel.Inject;

public sealed partial class RemoteCalls
{
    public int OpenAt(string path, int flags, int mode = 0)
    {
        ulong p = WriteString(path);
        return (int)Call($"openat({path})", SyscallNumbers.Openat, unchecked((ulong)Interop.AT_FDCWD), p, (ulong)flags, (ulong)mode);
    }

    public void Close(int fd) => Call("close", SyscallNumbers.Close, (ulong)fd);

    public void CloseRange(int first, uint last) => Call("close_range", SyscallNumbers.CloseRange, (ulong)first, last, 0);

    public void Dup3(int from, int to, bool closeOnExec) =>
        Call($"dup3({from}, {to})", SyscallNumbers.Dup3, (ulong)from, (ulong)to, closeOnExec ? (ulong)Interop.O_CLOEXEC : 0);

    /// <summary>Whether fd <paramref name="fd"/> is open in the process (fcntl F_GETFD).</summary>
    public bool IsOpen(int fd) => Injector.Call(SyscallNumbers.Fcntl, (ulong)fd, Interop.F_GETFD) >= 0;

    public void SetCloseOnExec(int fd, bool value) =>
        Call("fcntl(F_SETFD)", SyscallNumbers.Fcntl, (ulong)fd, Interop.F_SETFD, value ? (ulong)Interop.FD_CLOEXEC : 0);

    /// <summary>Duplicates <paramref name="fd"/> to the lowest free number ≥ <paramref name="minimum"/>.</summary>
    public int DupAbove(int fd, int minimum) =>
        (int)Call("fcntl(F_DUPFD_CLOEXEC)", SyscallNumbers.Fcntl, (ulong)fd, Interop.F_DUPFD_CLOEXEC, (ulong)minimum);

    /// <summary>A new pipe inside the process: (read end, write end).</summary>
    public (int Read, int Write) Pipe()
    {
        Call("pipe2", SyscallNumbers.Pipe2, Scratch, (ulong)Interop.O_CLOEXEC);
        return (Memory.Read<int>(Scratch), Memory.Read<int>(Scratch + 4));
    }

    public void SetPipeSize(int fd, int size) => Call("fcntl(F_SETPIPE_SZ)", SyscallNumbers.Fcntl, (ulong)fd, Interop.F_SETPIPE_SZ, (ulong)size);

    /// <summary>The file status flags of an open file description (O_APPEND, O_NONBLOCK...).</summary>
    public void SetStatusFlags(int fd, int flags) => Call("fcntl(F_SETFL)", SyscallNumbers.Fcntl, (ulong)fd, Interop.F_SETFL, (ulong)flags);

    public long Seek(int fd, long offset) => Call("lseek", SyscallNumbers.Lseek, (ulong)fd, (ulong)offset, 0 /* SEEK_SET */);

    public void ChangeDirectory(string path)
    {
        ulong p = WriteString(path);
        Call($"chdir({path})", SyscallNumbers.Chdir, p);
    }

    public void SetUmask(uint mask) => Call("umask", SyscallNumbers.Umask, mask);
}
