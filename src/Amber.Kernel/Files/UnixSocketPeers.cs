using System.Buffers.Binary;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// What the sock_diag netlink interface tells of a unix socket and /proc does not: the inode of the
/// socket connected to it (UDIAG_SHOW_PEER), and for a listening socket how many connections wait
/// to be accepted (UDIAG_SHOW_RQLEN).
/// </summary>
public static class UnixSocketPeers
{
    /// <summary>The inode of the socket connected to unix socket <paramref name="inode"/>, or 0.</summary>
    public static ulong PeerOf(ulong inode) => Query(inode).Peer;

    /// <summary>Connections waiting to be accepted on listening unix socket <paramref name="inode"/>.</summary>
    public static int PendingConnections(ulong inode) => (int)Query(inode).ReceiveQueue;

    private static unsafe (ulong Peer, uint ReceiveQueue) Query(ulong inode)
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
        BinaryPrimitives.WriteUInt32LittleEndian(request[28..], Interop.UDIAG_SHOW_PEER | Interop.UDIAG_SHOW_RQLEN);
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
            return (0, 0); // NLMSG_ERROR: the socket is gone or unknown
        ulong peer = 0;
        uint receiveQueue = 0;
        // struct unix_diag_msg is 16 bytes after the header; then rtattrs {u16 len, u16 type, data}.
        for (int at = 16 + 16; at + 4 <= length;)
        {
            int attrLength = BinaryPrimitives.ReadUInt16LittleEndian(msg[at..]);
            int type = BinaryPrimitives.ReadUInt16LittleEndian(msg[(at + 2)..]);
            if (attrLength < 4 || at + attrLength > length)
                break;
            if (type == Interop.UNIX_DIAG_PEER && attrLength >= 8)
                peer = BinaryPrimitives.ReadUInt32LittleEndian(msg[(at + 4)..]);
            else if (type == Interop.UNIX_DIAG_RQLEN && attrLength >= 8)
                receiveQueue = BinaryPrimitives.ReadUInt32LittleEndian(msg[(at + 4)..]); // struct unix_diag_rqlen: rqueue, wqueue
            at += (attrLength + 3) & ~3;
        }
        return (peer, receiveQueue);
    }
}
