using System.Runtime.InteropServices;
using System.Text;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// A pair of connected seqpacket unix sockets over which short text messages travel with open files
/// attached (SCM_RIGHTS): how the coordinator and its workers hand each other userfaultfds.
/// One message per record; the receiver owns the files it gets.
/// </summary>
public static class FdChannel
{
    private const int MaxMessage = 64 << 10;
    private const int MaxFiles = 16;

    /// <summary>A new connected pair (close-on-exec: pass one end on explicitly).</summary>
    public static unsafe (HeldFile A, HeldFile B) Pair()
    {
        int* fds = stackalloc int[2];
        Errnos.Check(Interop.Socketpair(Interop.AF_UNIX, Interop.SOCK_SEQPACKET | Interop.O_CLOEXEC, 0, fds), "socketpair(SEQPACKET)", "amber");
        return (new HeldFile(new SafeFdHandle(fds[0])), new HeldFile(new SafeFdHandle(fds[1])));
    }

    /// <summary>Adopts an fd this process inherited (a worker's end of the channel).</summary>
    public static HeldFile Inherited(int fd) => new(new SafeFdHandle(fd));

    public static void Send(HeldFile channel, string text, IReadOnlyList<HeldFile> files) =>
        UnixSocketQueue.Send(channel, Encoding.UTF8.GetBytes(text), files, [], "a channel of amber's");

    /// <summary>The next message and the files it carries; null at the end (the other end closed).</summary>
    public static unsafe (string Text, List<HeldFile> Files)? Receive(HeldFile channel)
    {
        var data = new byte[MaxMessage];
        var control = new byte[64 + MaxFiles * sizeof(int)];
        nint n;
        Msghdr header;
        fixed (byte* d = data, c = control)
        {
            var iov = new Iovec { iov_base = (nint)d, iov_len = (nuint)data.Length };
            header = new Msghdr { msg_iov = &iov, msg_iovlen = 1, msg_control = c, msg_controllen = (nuint)control.Length };
            do
            {
                n = Interop.Recvmsg(channel.Fd, &header, Interop.MSG_CMSG_CLOEXEC);
            }
            while (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR);
        }
        if (n < 0)
            Errnos.Throw("recvmsg", "a channel of amber's");
        var files = UnixSocketQueue.ReceivedFiles(control.AsSpan(0, (int)header.msg_controllen));
        if (n == 0 && files.Count == 0)
            return null;
        return (Encoding.UTF8.GetString(data, 0, (int)n), files);
    }
}
