using System.Buffers.Binary;
using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// Which unix socket is connected to which: the sock_diag netlink interface reports a socket's peer
/// by inode (UDIAG_SHOW_PEER), the one thing /proc does not show. Also peeks at the bytes queued on a
/// socket of another process without consuming them.
/// </summary>
public static class UnixSocketPeers
{
    /// <summary>The inode of the socket connected to unix socket <paramref name="inode"/>, or 0.</summary>
    public static unsafe ulong PeerOf(ulong inode)
    {
        int nl = Interop.Socket(Interop.AF_NETLINK, Interop.SOCK_DGRAM | Interop.O_CLOEXEC, Interop.NETLINK_SOCK_DIAG);
        Errnos.Check(nl, "socket(AF_NETLINK, NETLINK_SOCK_DIAG)", "amber");
        using var socket = new SafeFdHandle(nl);
        // struct nlmsghdr (16) + struct unix_diag_req (24)
        Span<byte> request = stackalloc byte[40];
        request.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(request, 40);
        BinaryPrimitives.WriteUInt16LittleEndian(request[4..], Interop.SOCK_DIAG_BY_FAMILY);
        BinaryPrimitives.WriteUInt16LittleEndian(request[6..], Interop.NLM_F_REQUEST);
        request[16] = Interop.AF_UNIX;                                  // sdiag_family
        BinaryPrimitives.WriteUInt32LittleEndian(request[20..], uint.MaxValue); // udiag_states: all
        BinaryPrimitives.WriteUInt32LittleEndian(request[24..], (uint)inode);  // udiag_ino
        BinaryPrimitives.WriteUInt32LittleEndian(request[28..], Interop.UDIAG_SHOW_PEER);
        BinaryPrimitives.WriteUInt64LittleEndian(request[32..], ulong.MaxValue); // no cookie
        fixed (byte* r = request)
        {
            if (Interop.Send(nl, r, 40, 0) != 40)
                Errnos.Throw("send(sock_diag)", $"unix socket {inode}");
        }
        var response = new byte[8192];
        nint n;
        fixed (byte* p = response)
            n = Interop.Recv(nl, p, (nuint)response.Length, 0);
        if (n < 16)
            Errnos.Throw("recv(sock_diag)", $"unix socket {inode}");
        var msg = response.AsSpan(0, (int)n);
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(msg);
        if (BinaryPrimitives.ReadUInt16LittleEndian(msg[4..]) != Interop.SOCK_DIAG_BY_FAMILY || length > msg.Length)
            return 0; // NLMSG_ERROR: the socket is gone or unknown
        // struct unix_diag_msg is 16 bytes after the header; then rtattrs {u16 len, u16 type, data}.
        for (int at = 16 + 16; at + 4 <= length;)
        {
            int attrLength = BinaryPrimitives.ReadUInt16LittleEndian(msg[at..]);
            int type = BinaryPrimitives.ReadUInt16LittleEndian(msg[(at + 2)..]);
            if (attrLength < 4)
                break;
            if (type == Interop.UNIX_DIAG_PEER && attrLength >= 8)
                return BinaryPrimitives.ReadUInt32LittleEndian(msg[(at + 4)..]);
            at += (attrLength + 3) & ~3;
        }
        return 0;
    }

    /// <summary>The bytes queued for reading on a stream socket of another process, left in place.</summary>
    public static unsafe byte[] PeekQueued(int pid, int fd)
    {
        int queued = ProcessFiles.QueuedBytes(pid, fd);
        if (queued == 0)
            return [];
        using var copy = ProcessFiles.GetFd(pid, fd);
        var data = new byte[queued];
        nint n;
        fixed (byte* p = data)
            n = Interop.Recv(copy.Fd, p, (nuint)data.Length, Interop.MSG_PEEK | Interop.MSG_DONTWAIT);
        if (n < 0)
            Errnos.Throw("recv(MSG_PEEK)", $"fd {fd} of process {pid}");
        return data.AsSpan(0, (int)n).ToArray();
    }

    /// <summary>
    /// Whether the first bytes queued on a unix socket of another process carry file descriptors
    /// (SCM_RIGHTS). Peeking copies them into amber: they are closed at once.
    /// </summary>
    public static unsafe bool CarriesDescriptors(int pid, int fd)
    {
        using var copy = ProcessFiles.GetFd(pid, fd);
        byte* data = stackalloc byte[256];
        byte* control = stackalloc byte[4096];
        byte* msghdr = stackalloc byte[Interop.MsghdrSize];
        var iov = new Iovec { iov_base = (nint)data, iov_len = 256 };
        new Span<byte>(msghdr, Interop.MsghdrSize).Clear();
        *(nint*)(msghdr + 16) = (nint)(&iov);   // msg_iov
        *(ulong*)(msghdr + 24) = 1;              // msg_iovlen
        *(nint*)(msghdr + 32) = (nint)control;   // msg_control
        *(ulong*)(msghdr + 40) = 4096;           // msg_controllen
        nint n = Interop.Recvmsg(copy.Fd, msghdr, Interop.MSG_PEEK | Interop.MSG_DONTWAIT | Interop.MSG_CMSG_CLOEXEC);
        if (n < 0)
            return false;
        ulong controlLength = *(ulong*)(msghdr + 40);
        bool rights = false;
        for (ulong at = 0; at + 16 <= controlLength;)
        {
            ulong length = *(ulong*)(control + at);
            int level = *(int*)(control + at + 8), type = *(int*)(control + at + 12);
            if (length < 16)
                break;
            if (level == Interop.SOL_SOCKET && type == Interop.SCM_RIGHTS)
            {
                rights = true;
                for (ulong i = 16; i + 4 <= length; i += 4)
                    Interop.Close(*(int*)(control + at + i));
            }
            at += (length + 7) & ~7UL;
        }
        return rights;
    }
}
