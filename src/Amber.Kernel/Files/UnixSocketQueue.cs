using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// Something waiting to be read on a unix socket: a datagram or seqpacket record, or a stretch of
/// stream bytes; with the descriptors it carries (SCM_RIGHTS, held by amber until disposed) and, for
/// a datagram, the address of the socket that sent it (empty if that one had no name).
/// </summary>
public sealed class QueuedMessage(byte[] data, byte[] sender, IReadOnlyList<HeldFile> descriptors) : IDisposable
{
    public byte[] Data => data;

    public byte[] Sender => sender;

    public IReadOnlyList<HeldFile> Descriptors => descriptors;

    public void Dispose()
    {
        foreach (var d in descriptors)
            d.Dispose();
    }
}

/// <summary>
/// Reads the queue of a unix socket of another process without consuming it, and fills a queue
/// again. Messages are peeked one after another at a moving SO_PEEK_OFF, which is put back as it
/// was; a peek duplicates the descriptors a message carries into amber.
/// Datagram and seqpacket messages keep their boundaries. A stream has none: the kernel only shows
/// where a message carrying descriptors ends (a peek stops after it), so each stretch of a stream
/// ends with such a message, or at the end of the queue, and carries its descriptors.
/// </summary>
public static class UnixSocketQueue
{
    private const int FirstBufferSize = 64 << 10;
    private const int MaxMessageSize = 64 << 20;
    private const int MaxMessages = 1 << 20;
    private const int ControlSize = 4096;          // SCM_MAX_FD (253) descriptors and credentials fit
    private const int SockaddrUnSize = 110;
    private const int CmsgHeaderSize = 16;         // struct cmsghdr on x86_64: size_t len, int level, int type
    private const int PeekOffsetDisabled = -1;

    /// <summary>
    /// Whether an error is pending on a socket of another process. Every receive takes a pending
    /// error first (and clears it), so a socket with one is never peeked: the program would lose it.
    /// </summary>
    public static unsafe bool HasPendingError(int pid, int fd)
    {
        using var copy = ProcessFiles.GetFd(pid, fd);
        return (PollEvents(copy.Fd, $"fd {fd} of process {pid}") & Interop.POLLERR) != 0;
    }

    /// <summary>Everything waiting on unix socket <paramref name="fd"/> of <paramref name="pid"/>, left in place. The caller disposes the messages.</summary>
    public static unsafe List<QueuedMessage> Peek(int pid, int fd)
    {
        string target = $"fd {fd} of process {pid}";
        using var copy = ProcessFiles.GetFd(pid, fd);
        int s = copy.Fd;
        int type = GetInt(s, Interop.SO_TYPE, target);
        short events = PollEvents(s, target);
        if ((events & Interop.POLLIN) == 0)
            return [];
        if ((events & Interop.POLLERR) != 0)
            throw new InvalidOperationException($"{target} has an error pending: check HasPendingError before peeking");
        bool hungUp = (events & Interop.POLLRDHUP) != 0;
        int total = 0;
        Interop.Ioctl(s, Interop.FIONREAD, &total); // stream and seqpacket: all the bytes; datagram: the first message
        int oldOffset = GetInt(s, Interop.SO_PEEK_OFF, target);
        var messages = new List<QueuedMessage>();
        try
        {
            var buffer = new byte[FirstBufferSize];
            var control = new byte[ControlSize];
            var name = new byte[SockaddrUnSize];
            long offset = 0;
            while (type != Interop.SOCK_STREAM || offset < total) // the end of a stream is never peeked: see HasPendingError
            {
                if (messages.Count == MaxMessages)
                    throw new KernelCallException("recvmsg(MSG_PEEK)", $"{target}: more than {MaxMessages} messages queued", Errnos.ENOMEM);
                SetInt(s, Interop.SO_PEEK_OFF, (int)offset, target);
                Msghdr header;
                nint n;
                fixed (byte* b = buffer, c = control, a = name)
                {
                    var iov = new Iovec { iov_base = (nint)b, iov_len = (nuint)buffer.Length };
                    header = new Msghdr
                    {
                        msg_name = a, msg_namelen = SockaddrUnSize, msg_iov = &iov, msg_iovlen = 1,
                        msg_control = c, msg_controllen = ControlSize,
                    };
                    do
                    {
                        n = Interop.Recvmsg(s, &header, Interop.MSG_PEEK | Interop.MSG_DONTWAIT | Interop.MSG_CMSG_CLOEXEC);
                    }
                    while (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR);
                }
                if (n < 0)
                {
                    if (Marshal.GetLastPInvokeError() == Errnos.EAGAIN)
                        break;
                    Errnos.Throw("recvmsg(MSG_PEEK)", target);
                }
                var descriptors = Descriptors(control.AsSpan(0, (int)header.msg_controllen));
                if ((header.msg_flags & Interop.MSG_CTRUNC) != 0)
                {
                    foreach (var d in descriptors)
                        d.Dispose();
                    throw new KernelCallException("recvmsg(MSG_PEEK)", $"{target}: a message carries more than its control buffer holds", Errnos.ENOMEM);
                }
                // A full buffer on a stream may have stopped short of the message carrying the descriptors reported.
                bool truncated = (header.msg_flags & Interop.MSG_TRUNC) != 0 || (type == Interop.SOCK_STREAM && n == buffer.Length);
                if (truncated)
                {
                    foreach (var d in descriptors)
                        d.Dispose();
                    if (buffer.Length >= MaxMessageSize)
                        throw new KernelCallException("recvmsg(MSG_PEEK)", $"{target}: a message of more than {MaxMessageSize} bytes", Errnos.ENOMEM);
                    buffer = new byte[buffer.Length * 4];
                    continue;
                }
                // Zero bytes on a seqpacket socket whose peer shut down, with nothing left: its end of file.
                if (n == 0 && type == Interop.SOCK_SEQPACKET && hungUp && offset >= total && descriptors.Count == 0)
                    break;
                byte[] sender = type == Interop.SOCK_DGRAM ? name.AsSpan(0, (int)Math.Min(header.msg_namelen, (uint)SockaddrUnSize)).ToArray() : [];
                messages.Add(new QueuedMessage(buffer.AsSpan(0, (int)n).ToArray(), sender, descriptors));
                offset += n;
            }
            return messages;
        }
        catch
        {
            foreach (var m in messages)
                m.Dispose();
            throw;
        }
        finally
        {
            SetInt(s, Interop.SO_PEEK_OFF, oldOffset < 0 ? PeekOffsetDisabled : oldOffset, target);
        }
    }

    /// <summary>
    /// Sends one message from <paramref name="socket"/> (a copy amber holds of a restored process's
    /// socket): its bytes and descriptors, to <paramref name="destination"/> unless that is empty.
    /// The sender's buffer is enlarged for the moment if the queue it refills needs more.
    /// </summary>
    public static unsafe void Send(HeldFile socket, ReadOnlySpan<byte> data, IReadOnlyList<HeldFile> descriptors, ReadOnlySpan<byte> destination, string target)
    {
        int s = socket.Fd;
        int controlLength = descriptors.Count == 0 ? 0 : CmsgHeaderSize + ((descriptors.Count * sizeof(int) + 7) & ~7);
        var control = new byte[Math.Max(controlLength, 1)];
        if (descriptors.Count > 0)
        {
            fixed (byte* c = control)
            {
                *(ulong*)c = (ulong)(CmsgHeaderSize + descriptors.Count * sizeof(int));
                *(int*)(c + 8) = Interop.SOL_SOCKET;
                *(int*)(c + 12) = Interop.SCM_RIGHTS;
                for (int i = 0; i < descriptors.Count; i++)
                    *(int*)(c + CmsgHeaderSize + i * sizeof(int)) = descriptors[i].Fd;
            }
        }
        int originalBuffer = -1;
        try
        {
            int sent = 0;
            bool first = true;
            // A zero-length datagram or record is a message too: it is sent once.
            while (first || sent < data.Length)
            {
                nint n;
                fixed (byte* b = data, c = control, a = destination)
                {
                    var iov = new Iovec { iov_base = (nint)(b + sent), iov_len = (nuint)(data.Length - sent) };
                    var header = new Msghdr
                    {
                        msg_name = destination.IsEmpty ? null : a, msg_namelen = (uint)destination.Length,
                        msg_iov = &iov, msg_iovlen = 1,
                        // The descriptors go with the first part of the message only.
                        msg_control = first && controlLength > 0 ? c : null, msg_controllen = first ? (nuint)controlLength : 0,
                    };
                    n = Interop.Sendmsg(s, &header, Interop.MSG_DONTWAIT | Interop.MSG_NOSIGNAL);
                }
                if (n >= 0)
                {
                    sent += (int)n;
                    first = false;
                    continue;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Errnos.EINTR)
                    continue;
                if (errno != Errnos.EAGAIN)
                    Errnos.Throw("sendmsg", target);
                // The sender's buffer is full of what it sent so far: give it room (root may exceed wmem_max).
                int current = GetInt(s, Interop.SO_SNDBUF, target);
                if (originalBuffer < 0)
                    originalBuffer = current;
                if (current >= MaxMessageSize * 4)
                    Errnos.Throw("sendmsg", $"{target}: the queue does not fit");
                SetInt(s, Interop.SO_SNDBUFFORCE, current, target); // the kernel doubles what it is given
            }
        }
        finally
        {
            if (originalBuffer >= 0)
                SetInt(s, Interop.SO_SNDBUFFORCE, originalBuffer / 2, target);
        }
    }

    /// <summary>Connects a datagram socket amber holds a copy of to <paramref name="address"/>.</summary>
    public static unsafe void Connect(HeldFile socket, ReadOnlySpan<byte> address, string target)
    {
        fixed (byte* a = address)
        {
            if (Interop.Connect(socket.Fd, a, (uint)address.Length) < 0)
                Errnos.Throw("connect", target);
        }
    }

    /// <summary>shutdown(2) as a socket was (1 receiving, 2 sending; 0 nothing).</summary>
    public static void Shutdown(HeldFile socket, int directions, string target)
    {
        if ((directions & 1) != 0)
            Errnos.Check(Interop.Shutdown(socket.Fd, Interop.SHUT_RD), "shutdown(SHUT_RD)", target);
        if ((directions & 2) != 0)
            Errnos.Check(Interop.Shutdown(socket.Fd, Interop.SHUT_WR), "shutdown(SHUT_WR)", target);
    }

    /// <summary>Creates a unix socket of <paramref name="type"/> in amber, with no name: the sender of messages whose own is gone.</summary>
    public static HeldFile Unnamed(int type)
    {
        int s = Interop.Socket(Interop.AF_UNIX, type | Interop.O_CLOEXEC, 0);
        Errnos.Check(s, "socket(AF_UNIX)", "amber");
        return new HeldFile(new SafeFdHandle(s));
    }

    /// <summary>The SCM_RIGHTS descriptors of a control buffer, now amber's.</summary>
    internal static List<HeldFile> ReceivedFiles(ReadOnlySpan<byte> control) => Descriptors(control);

    private static unsafe List<HeldFile> Descriptors(ReadOnlySpan<byte> control)
    {
        var held = new List<HeldFile>();
        fixed (byte* c = control)
        {
            for (int at = 0; at + CmsgHeaderSize <= control.Length;)
            {
                int length = (int)Math.Min(*(ulong*)(c + at), (ulong)(control.Length - at));
                if (length < CmsgHeaderSize)
                    break;
                if (*(int*)(c + at + 8) == Interop.SOL_SOCKET && *(int*)(c + at + 12) == Interop.SCM_RIGHTS)
                {
                    for (int i = CmsgHeaderSize; i + sizeof(int) <= length; i += sizeof(int))
                        held.Add(new HeldFile(new SafeFdHandle(*(int*)(c + at + i))));
                }
                at += (length + 7) & ~7;
            }
        }
        return held;
    }

    private static unsafe short PollEvents(int s, string target)
    {
        var p = new Pollfd { fd = s, events = Interop.POLLIN | Interop.POLLRDHUP };
        int rv;
        do
        {
            rv = Interop.Poll(&p, 1, 0);
        }
        while (rv < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR);
        Errnos.Check(rv, "poll", target);
        return p.revents;
    }

    private static unsafe int GetInt(int s, int name, string target)
    {
        int value = 0;
        uint length = sizeof(int);
        if (Interop.Getsockopt(s, Interop.SOL_SOCKET, name, &value, &length) < 0)
            Errnos.Throw($"getsockopt(SOL_SOCKET, {name})", target);
        return value;
    }

    private static unsafe void SetInt(int s, int name, int value, string target)
    {
        if (Interop.Setsockopt(s, Interop.SOL_SOCKET, name, &value, sizeof(int)) < 0)
            Errnos.Throw($"setsockopt(SOL_SOCKET, {name})", target);
    }
}
