using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// A file another process holds or maps — a memfd, what backs its shared anonymous memory, a file
/// deleted while in use — opened by amber through /proc/PID/fd or /proc/PID/map_files (an open file of
/// its own, so the process's offset never moves); read and written in place.
/// </summary>
public sealed class RemoteFile : IDisposable
{
    private readonly SafeFdHandle _fd;

    private RemoteFile(SafeFdHandle fd) => _fd = fd;

    /// <summary>
    /// The file behind fd <paramref name="fd"/> of the process, through an open file of amber's own
    /// (/proc/PID/fd/N opened again, not pidfd_getfd): seeking for its data must never move the offset
    /// the process sees.
    /// </summary>
    public static RemoteFile FromFd(int pid, int fd, bool writable = true) =>
        Open($"/proc/{pid}/fd/{fd}", writable, "open /proc/PID/fd", $"fd {fd} of process {pid}");

    public static RemoteFile FromMapping(int pid, ulong start, ulong end, bool writable = true) =>
        Open($"/proc/{pid}/map_files/{start:x}-{end:x}", writable, "open /proc/PID/map_files", $"mapping {start:x}-{end:x} of process {pid}");

    private static unsafe RemoteFile Open(string path, bool writable, string call, string target)
    {
        var name = NativeString.Utf8Z(path);
        int fd;
        fixed (byte* p = name)
            fd = Interop.Open(p, (writable ? Interop.O_RDWR : Interop.O_RDONLY) | Interop.O_CLOEXEC, 0);
        if (fd < 0)
            Errnos.Throw(call, target);
        return new RemoteFile(new SafeFdHandle(fd));
    }

    public long Size => Stat().Size;

    public unsafe FileStat Stat()
    {
        Stat st;
        Errnos.Check(Interop.FStat(_fd.Fd, &st), "fstat", "a file of another process");
        return FileStat.From(st);
    }

    /// <summary>F_GET_SEALS; 0 where the object cannot be sealed.</summary>
    public uint Seals
    {
        get
        {
            int seals = Interop.Fcntl(_fd.Fd, Interop.F_GET_SEALS, 0);
            return seals < 0 ? 0 : (uint)seals;
        }
    }

    /// <summary>F_ADD_SEALS: seals are the file's, whoever adds them.</summary>
    public void AddSeals(uint seals) =>
        Errnos.Check(Interop.Fcntl(_fd.Fd, Interop.F_ADD_SEALS, (int)seals), "fcntl(F_ADD_SEALS)", "a memfd of another process");

    /// <summary>The ranges that hold data (SEEK_DATA/SEEK_HOLE): holes read as zeros and need no copy.</summary>
    public IEnumerable<(long Offset, long Length)> DataExtents()
    {
        long size = Size;
        long at = 0;
        while (at < size)
        {
            long data = Interop.Lseek(_fd.Fd, at, Interop.SEEK_DATA);
            if (data < 0)
                yield break; // ENXIO: only a hole is left
            long hole = Interop.Lseek(_fd.Fd, data, Interop.SEEK_HOLE);
            if (hole < 0)
                hole = size;
            yield return (data, hole - data);
            at = hole;
        }
    }

    public unsafe void Read(long offset, Span<byte> destination)
    {
        fixed (byte* p = destination)
        {
            int done = 0;
            while (done < destination.Length)
            {
                nint n = Interop.Pread(_fd.Fd, p + done, (nuint)(destination.Length - done), offset + done);
                if (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR)
                    continue;
                if (n < 0)
                    Errnos.Throw("pread", "a shared memory object");
                if (n == 0)
                {
                    destination[done..].Clear(); // past the end: zeros, as the mapping shows
                    return;
                }
                done += (int)n;
            }
        }
    }

    public unsafe void Write(long offset, ReadOnlySpan<byte> source)
    {
        fixed (byte* p = source)
        {
            int done = 0;
            while (done < source.Length)
            {
                nint n = Interop.Pwrite(_fd.Fd, p + done, (nuint)(source.Length - done), offset + done);
                if (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR)
                    continue;
                if (n <= 0)
                    Errnos.Throw("pwrite", "a shared memory object");
                done += (int)n;
            }
        }
    }

    public void Dispose() => _fd.Dispose();
}
