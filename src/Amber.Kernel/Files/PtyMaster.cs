using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// A pseudo-terminal as amber reaches it through its master: a copy of a process's master fd
/// (pidfd_getfd, the same open file), so the terminal is read and set as the process would, from
/// outside. The termios and window-size ioctls on a master act on its slave. The slave, when needed,
/// is opened from the master (TIOCGPTPEER: no path, no devpts lookup) and kept until disposal, so
/// that amber's own open of it never is the last to close.
/// </summary>
public sealed class PtyMaster : IDisposable
{
    /// <summary>The kernel's struct termios (TCGETS): four flag words, the line discipline, 19 control characters.</summary>
    public const int TermiosSize = 36;

    /// <summary>struct winsize (TIOCGWINSZ).</summary>
    public const int WindowSizeSize = 8;

    private static readonly TimeSpan ArrivalWait = TimeSpan.FromSeconds(2);

    private readonly SafeFdHandle _master;
    private readonly string _target;
    private SafeFdHandle? _slave;

    private PtyMaster(SafeFdHandle master, string target)
    {
        _master = master;
        _target = target;
    }

    /// <summary>The master <paramref name="fd"/> of process <paramref name="pid"/>.</summary>
    /// <exception cref="KernelCallException">The process or the fd is gone.</exception>
    public static PtyMaster Of(int pid, int fd) => new(ProcessFiles.GetFd(pid, fd), $"pseudo-terminal master fd {fd} of process {pid}");

    /// <summary>N of its slave /dev/pts/N (TIOCGPTN).</summary>
    public int Index => GetInt(Interop.TIOCGPTN, "ioctl(TIOCGPTN)");

    /// <summary>The slave's struct termios, as the kernel lays it out (<see cref="TermiosSize"/> bytes).</summary>
    public byte[] Termios
    {
        get => Get(Interop.TCGETS, TermiosSize, "ioctl(TCGETS)");
        set => Set(Interop.TCSETS, value, "ioctl(TCSETS)");
    }

    /// <summary>Its struct winsize (<see cref="WindowSizeSize"/> bytes).</summary>
    public byte[] WindowSize
    {
        get => Get(Interop.TIOCGWINSZ, WindowSizeSize, "ioctl(TIOCGWINSZ)");
        set => Set(Interop.TIOCSWINSZ, value, "ioctl(TIOCSWINSZ)");
    }

    /// <summary>Packet mode (TIOCPKT): each read of the master starts with a status byte.</summary>
    public bool PacketMode
    {
        get => GetInt(Interop.TIOCGPKT, "ioctl(TIOCGPKT)") != 0;
        set => SetInt(Interop.TIOCPKT, value ? 1 : 0, "ioctl(TIOCPKT)");
    }

    /// <summary>The slave cannot be opened (unlockpt not called yet).</summary>
    public bool Locked
    {
        get => GetInt(Interop.TIOCGPTLCK, "ioctl(TIOCGPTLCK)") != 0;
        set => SetInt(Interop.TIOCSPTLCK, value ? 1 : 0, "ioctl(TIOCSPTLCK)");
    }

    /// <summary>The slave's line discipline (N_TTY unless a program set another).</summary>
    public int LineDiscipline => GetInt(Interop.TIOCGETD, "ioctl(TIOCGETD)");

    /// <summary>The session whose controlling terminal it is (its leader's PID), 0 if none.</summary>
    public int Session => TryGetInt(Interop.TIOCGSID, out int sid) ? sid : 0;

    /// <summary>The foreground process group of its session, 0 if none.</summary>
    public int ForegroundGroup => TryGetInt(Interop.TIOCGPGRP, out int pgrp) ? pgrp : 0;

    /// <summary>What the slave wrote that the master has not read (FIONREAD on the master).</summary>
    public int Queued => QueuedOn(_master);

    /// <summary>
    /// Every open file of its slave was closed after it had been opened: the master reads EIO once its
    /// queue is empty (poll says POLLHUP). A slave never opened is not closed.
    /// </summary>
    public bool SlaveClosed => (Poll(_master) & Interop.POLLHUP) != 0;

    private bool Readable(SafeFdHandle fd) => (Poll(fd) & Interop.POLLIN) != 0;

    private unsafe short Poll(SafeFdHandle fd)
    {
        var poll = new Pollfd { fd = fd.Fd, events = Interop.POLLIN };
        Errnos.Check(Interop.Poll(&poll, 1, 0), "poll", _target);
        return poll.revents;
    }

    /// <summary>What the master wrote that the slave has not read (FIONREAD on the slave: in canonical mode only whole lines).</summary>
    public int SlaveQueued => QueuedOn(Slave);

    /// <summary>Reads what waits for the master (the slave's output), as the process would; packet mode's status bytes are left out.</summary>
    public byte[] TakeFromMaster()
    {
        int queued = Queued;
        bool packet = queued > 0 && PacketMode;
        var data = new List<byte>(queued);
        var buffer = new byte[queued + 1];
        // Never a read that could wait (the master may be a blocking file): only while poll says there is something.
        while (data.Count < queued && Readable(_master))
        {
            int n = ReadSome(_master, buffer.AsSpan(0, queued - data.Count + (packet ? 1 : 0)));
            if (n <= 0)
                break;
            // In packet mode a read is one status byte, then data if the status is TIOCPKT_DATA (0).
            data.AddRange(packet ? buffer.AsSpan(1, n - 1).ToArray() : buffer.AsSpan(0, n).ToArray());
        }
        return [.. data];
    }

    /// <summary>Reads what waits for the slave (the master's input), as a reader of the slave would.</summary>
    public byte[] TakeFromSlave()
    {
        int queued = SlaveQueued;
        var buffer = new byte[queued];
        int done = 0;
        while (done < queued)
        {
            int n = ReadSome(Slave, buffer.AsSpan(done));
            if (n <= 0)
                break;
            done += n;
        }
        return buffer[..done];
    }

    /// <summary>
    /// Puts <paramref name="data"/> back in the master's queue, as the slave wrote it: written through
    /// the slave with output processing off for the time of it (it was processed once).
    /// </summary>
    public void PutForMaster(ReadOnlySpan<byte> data) =>
        PutBack(data, () => Slave, "write to the slave", () => Queued, "the master", t => SetFlags(t, OutputFlags, Flags(t, OutputFlags) & ~Interop.OPOST));

    /// <summary>
    /// Puts <paramref name="data"/> back in the slave's queue (non-canonical input), as the master wrote
    /// it: written through the master with echo, signals and input translation off for the time of it
    /// (it was received once).
    /// </summary>
    public void PutForSlave(ReadOnlySpan<byte> data) =>
        PutBack(data, () => _master, "write to the master", () => SlaveQueued, "the slave", t =>
        {
            SetFlags(t, InputFlags, Flags(t, InputFlags) & ~(Interop.ICRNL | Interop.INLCR | Interop.IGNCR | Interop.IUCLC | Interop.ISTRIP | Interop.PARMRK | Interop.INPCK));
            SetFlags(t, LocalFlags, Flags(t, LocalFlags) & ~(Interop.ECHO | Interop.ECHONL | Interop.ISIG | Interop.IEXTEN));
        });

    /// <summary>
    /// Writes <paramref name="data"/> through one side (<paramref name="through"/>, opened only if there
    /// is something to write) under the termios <paramref name="quiet"/> makes of the saved one, waits
    /// until the other side's queue (<paramref name="queued"/>) has it, and puts the saved termios back.
    /// </summary>
    private void PutBack(ReadOnlySpan<byte> data, Func<SafeFdHandle> through, string call, Func<int> queued, string where, Action<byte[]> quiet)
    {
        if (data.IsEmpty)
            return;
        var saved = Termios;
        var quieted = (byte[])saved.Clone();
        quiet(quieted);
        int expected = queued() + data.Length;
        Termios = quieted;
        try
        {
            WriteAll(through(), data, call);
            WaitFor(() => queued() >= expected, where);
        }
        finally
        {
            Termios = saved;
        }
    }

    /// <summary>Opens the slave once and closes it (a slave that was opened and closed: the master reads EIO).</summary>
    public void OpenAndCloseSlave()
    {
        _ = Slave;
        _slave!.Dispose();
        _slave = null;
    }

    /// <summary>Whether the slave's termios has canonical (line by line) input.</summary>
    public static bool Canonical(ReadOnlySpan<byte> termios) => (Flags(termios, LocalFlags) & Interop.ICANON) != 0;

    private const int InputFlags = 0, OutputFlags = 4, LocalFlags = 12;

    private static uint Flags(ReadOnlySpan<byte> termios, int at) => BinaryPrimitives.ReadUInt32LittleEndian(termios[at..]);

    private static void SetFlags(Span<byte> termios, int at, uint value) => BinaryPrimitives.WriteUInt32LittleEndian(termios[at..], value);

    private unsafe SafeFdHandle Slave
    {
        get
        {
            if (_slave is null)
            {
                // The argument is the slave's open flags, by value.
                int fd = Interop.Ioctl(_master.Fd, Interop.TIOCGPTPEER, (void*)(nint)(Interop.O_RDWR | Interop.O_NOCTTY | Interop.O_NONBLOCK | Interop.O_CLOEXEC));
                _slave = new SafeFdHandle(Errnos.Check(fd, "ioctl(TIOCGPTPEER)", _target));
            }
            return _slave;
        }
    }

    private static void WaitFor(Func<bool> arrived, string where)
    {
        long until = Environment.TickCount64 + (long)ArrivalWait.TotalMilliseconds;
        while (!arrived())
        {
            if (Environment.TickCount64 > until)
                throw new IOException($"bytes written to a pseudo-terminal did not reach {where} within {ArrivalWait.TotalSeconds:0} s");
            Thread.Sleep(1);
        }
    }

    private unsafe int QueuedOn(SafeFdHandle fd)
    {
        int queued = 0;
        Errnos.Check(Interop.Ioctl(fd.Fd, (ulong)Interop.FIONREAD, &queued), "ioctl(FIONREAD)", _target);
        return queued;
    }

    private unsafe int ReadSome(SafeFdHandle fd, Span<byte> into)
    {
        fixed (byte* p = into)
        {
            while (true)
            {
                nint n = Interop.Read(fd.Fd, p, (nuint)into.Length);
                if (n >= 0)
                    return (int)n;
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Errnos.EINTR)
                    continue;
                if (errno is Errnos.EAGAIN or Errnos.EIO)
                    return 0;
                Errnos.Throw("read", _target);
            }
        }
    }

    private unsafe void WriteAll(SafeFdHandle fd, ReadOnlySpan<byte> data, string call)
    {
        fixed (byte* p = data)
        {
            int done = 0;
            while (done < data.Length)
            {
                nint n = Interop.Write(fd.Fd, p + done, (nuint)(data.Length - done));
                if (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR)
                    continue;
                if (n <= 0)
                    Errnos.Throw(call, _target);
                done += (int)n;
            }
        }
    }

    private unsafe byte[] Get(ulong request, int size, string call)
    {
        var value = new byte[size];
        fixed (byte* p = value)
            Errnos.Check(Interop.Ioctl(_master.Fd, request, p), call, _target);
        return value;
    }

    private unsafe void Set(ulong request, byte[] value, string call)
    {
        fixed (byte* p = value)
            Errnos.Check(Interop.Ioctl(_master.Fd, request, p), call, _target);
    }

    private unsafe int GetInt(ulong request, string call)
    {
        int value = 0;
        Errnos.Check(Interop.Ioctl(_master.Fd, request, &value), call, _target);
        return value;
    }

    private unsafe bool TryGetInt(ulong request, out int value)
    {
        int v = 0;
        bool ok = Interop.Ioctl(_master.Fd, request, &v) >= 0;
        value = v;
        return ok;
    }

    private unsafe void SetInt(ulong request, int value, string call) =>
        Errnos.Check(Interop.Ioctl(_master.Fd, request, &value), call, _target);

    public void Dispose()
    {
        _slave?.Dispose();
        _master.Dispose();
    }
}
