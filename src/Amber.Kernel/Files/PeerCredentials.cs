using System.Net.Sockets;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// Who is at the other end of a connected unix socket, as the kernel recorded it when the peer
/// connected (SO_PEERCRED: struct ucred), whatever the peer did since.
/// </summary>
public readonly record struct PeerCredentials(int Pid, uint Uid, uint Gid)
{
    public static PeerCredentials Of(Socket socket)
    {
        Span<byte> ucred = stackalloc byte[12]; // struct ucred: pid, uid, gid
        socket.GetRawSocketOption(Interop.SOL_SOCKET, Interop.SO_PEERCRED, ucred);
        return new PeerCredentials(BitConverter.ToInt32(ucred), BitConverter.ToUInt32(ucred[4..]), BitConverter.ToUInt32(ucred[8..]));
    }

    /// <summary>The peer's supplementary groups at connect time (SO_PEERGROUPS).</summary>
    public static List<uint> GroupsOf(Socket socket)
    {
        var groups = new byte[4 * 65536]; // NGROUPS_MAX: never too small
        int length = socket.GetRawSocketOption(Interop.SOL_SOCKET, Interop.SO_PEERGROUPS, groups);
        return [.. Enumerable.Range(0, length / 4).Select(i => BitConverter.ToUInt32(groups, 4 * i))];
    }
}
