using System.Buffers.Binary;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>What sock_diag tells of one unix socket and /proc does not.</summary>
/// <param name="Peer">The inode of the socket connected to it; 0 if none, or if that one was closed.</param>
/// <param name="ReceiveQueue">Bytes waiting in it; for a listening socket, connections waiting to be accepted.</param>
/// <param name="WriteQueue">Bytes it sent not yet read; for a listening socket, its backlog.</param>
/// <param name="Shutdown">Directions shut down (1 receiving, 2 sending), by it or by its peer.</param>
/// <param name="Waiting">A listening socket's connections waiting to be accepted, oldest first, by the inode
/// of the socket that connected (0: that one was closed since).</param>
public sealed record UnixSocketDiag(ulong Peer, uint ReceiveQueue, uint WriteQueue, int Shutdown, IReadOnlyList<ulong> Waiting);

/// <summary>
/// What the sock_diag netlink interface tells of a unix socket and /proc does not: the inode of the
/// socket connected to it (UDIAG_SHOW_PEER), its queue (UDIAG_SHOW_RQLEN), its shutdown state, and
/// for a listening socket the connections waiting to be accepted (UDIAG_SHOW_ICONS).
/// </summary>
public static class UnixSocketPeers
{
    /// <summary>The inode of the socket connected to unix socket <paramref name="inode"/>, or 0.</summary>
    public static ulong PeerOf(ulong inode) => Describe(inode).Peer;

    public static UnixSocketDiag Describe(ulong inode) => Query(inode);

    private static UnixSocketDiag Query(ulong inode)
    {
        // struct nlmsghdr (16) + struct unix_diag_req (24)
        Span<byte> request = stackalloc byte[40];
        request.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(request, 40);
        BinaryPrimitives.WriteUInt16LittleEndian(request[4..], Interop.SOCK_DIAG_BY_FAMILY);
        BinaryPrimitives.WriteUInt16LittleEndian(request[6..], Interop.NLM_F_REQUEST);
        request[16] = Interop.AF_UNIX;                                  // sdiag_family
        BinaryPrimitives.WriteUInt32LittleEndian(request[20..], uint.MaxValue); // udiag_states: all
        BinaryPrimitives.WriteUInt32LittleEndian(request[24..], (uint)inode);  // udiag_ino
        BinaryPrimitives.WriteUInt32LittleEndian(request[28..], Interop.UDIAG_SHOW_PEER | Interop.UDIAG_SHOW_RQLEN | Interop.UDIAG_SHOW_ICONS);
        BinaryPrimitives.WriteUInt64LittleEndian(request[32..], ulong.MaxValue); // no cookie
        var response = new byte[8192];
        var msg = response.AsSpan(0, Net.SockDiag.Exchange(request, response, "sock_diag", $"unix socket {inode}"));
        int length = (int)BinaryPrimitives.ReadUInt32LittleEndian(msg);
        if (BinaryPrimitives.ReadUInt16LittleEndian(msg[4..]) != Interop.SOCK_DIAG_BY_FAMILY || length > msg.Length)
            return new UnixSocketDiag(0, 0, 0, 0, []); // NLMSG_ERROR: the socket is gone or unknown
        ulong peer = 0;
        uint receiveQueue = 0, writeQueue = 0;
        int shutdown = 0;
        var waiting = new List<ulong>();
        // struct unix_diag_msg is 16 bytes after the header; then rtattrs {u16 len, u16 type, data}.
        for (int at = 16 + 16; at + 4 <= length;)
        {
            int attrLength = BinaryPrimitives.ReadUInt16LittleEndian(msg[at..]);
            int type = BinaryPrimitives.ReadUInt16LittleEndian(msg[(at + 2)..]);
            if (attrLength < 4 || at + attrLength > length)
                break;
            if (type == Interop.UNIX_DIAG_PEER && attrLength >= 8)
                peer = BinaryPrimitives.ReadUInt32LittleEndian(msg[(at + 4)..]);
            else if (type == Interop.UNIX_DIAG_RQLEN && attrLength >= 12)
            {
                receiveQueue = BinaryPrimitives.ReadUInt32LittleEndian(msg[(at + 4)..]); // struct unix_diag_rqlen: rqueue, wqueue
                writeQueue = BinaryPrimitives.ReadUInt32LittleEndian(msg[(at + 8)..]);
            }
            else if (type == Interop.UNIX_DIAG_SHUTDOWN && attrLength >= 5)
                shutdown = msg[at + 4];
            else if (type == Interop.UNIX_DIAG_ICONS)
            {
                for (int i = at + 4; i + 4 <= at + attrLength; i += 4)
                    waiting.Add(BinaryPrimitives.ReadUInt32LittleEndian(msg[i..]));
            }
            at += (attrLength + 3) & ~3;
        }
        return new UnixSocketDiag(peer, receiveQueue, writeQueue, shutdown, waiting);
    }
}
