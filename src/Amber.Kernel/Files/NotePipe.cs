using System.Runtime.InteropServices;
using System.Text;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// A pipe for short lines (notes) from a worker to the coordinator, such as progress samples. The
/// writer never waits: its end does not block, and a note the pipe has no room for, or that nobody
/// reads any more, is dropped — the next one says more. Notes shorter than PIPE_BUF (4 KiB) arrive
/// whole.
/// </summary>
public static class NotePipe
{
    private const int PipeBuf = 4096;

    /// <summary>A new pipe, both ends close-on-exec (pass the write end on explicitly), the write end non-blocking.</summary>
    public static unsafe (HeldFile Read, HeldFile Write) Create()
    {
        int* fds = stackalloc int[2];
        Errnos.Check(Interop.Pipe2(fds, Interop.O_CLOEXEC), "pipe2", "amber");
        var read = new HeldFile(new SafeFdHandle(fds[0]));
        var write = new HeldFile(new SafeFdHandle(fds[1]));
        // O_NONBLOCK belongs to the write end's open file description alone: the reader still blocks.
        if (Interop.Fcntl(write.Fd, Interop.F_SETFL, Interop.O_NONBLOCK) < 0)
        {
            read.Dispose();
            write.Dispose();
            Errnos.Throw("fcntl(F_SETFL, O_NONBLOCK)", "a pipe of amber's");
        }
        return (read, write);
    }

    /// <summary>What became of a note.</summary>
    public enum Sent { Whole, Dropped, ReaderGone }

    /// <summary>Adopts the write end this process inherited at <paramref name="fd"/>, close-on-exec again: it is not for the programs this one starts.</summary>
    public static HeldFile Inherited(int fd)
    {
        var held = new HeldFile(new SafeFdHandle(fd));
        if (Interop.Fcntl(fd, Interop.F_SETFD, Interop.FD_CLOEXEC) < 0)
        {
            held.Dispose();
            Errnos.Throw("fcntl(F_SETFD, FD_CLOEXEC)", $"inherited fd {fd}");
        }
        return held;
    }

    /// <summary>Writes one note (a newline is added), unless the pipe is full (dropped) or nobody reads it any more.</summary>
    public static unsafe Sent TryWrite(HeldFile write, string note)
    {
        var bytes = Encoding.UTF8.GetBytes(note + "\n");
        if (bytes.Length > PipeBuf)
            throw new ArgumentException($"a note of {bytes.Length} bytes is longer than PIPE_BUF ({PipeBuf}): it could arrive in pieces", nameof(note));
        nint n;
        fixed (byte* b = bytes)
        {
            do
            {
                n = Interop.Write(write.Fd, b, (nuint)bytes.Length);
            }
            while (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR);
        }
        return n == bytes.Length ? Sent.Whole : n < 0 && Marshal.GetLastPInvokeError() == Errnos.EPIPE ? Sent.ReaderGone : Sent.Dropped;
    }

    /// <summary>Reads notes until every write end is closed, handing each line to <paramref name="note"/>.</summary>
    public static unsafe void ReadAll(HeldFile read, Action<string> note)
    {
        var buffer = new byte[PipeBuf];
        var pending = new List<byte>();
        while (true)
        {
            nint n;
            fixed (byte* b = buffer)
                n = Interop.Read(read.Fd, b, (nuint)buffer.Length);
            if (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR)
                continue;
            if (n < 0)
                Errnos.Throw("read", "a pipe of amber's");
            if (n == 0)
                return;
            foreach (byte c in buffer.AsSpan(0, (int)n))
            {
                if (c != (byte)'\n')
                {
                    pending.Add(c);
                    continue;
                }
                note(Encoding.UTF8.GetString(CollectionsMarshal.AsSpan(pending)));
                pending.Clear();
            }
        }
    }
}
