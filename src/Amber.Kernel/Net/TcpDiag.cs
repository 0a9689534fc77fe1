using System.Buffers.Binary;
using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>
/// One TCP connection looked up by its four addresses through sock_diag: its state and the bytes in its
/// receive queue, also for a connection no fd holds (one waiting in an accept queue).
/// </summary>
internal static class TcpDiag
{
    private const int RequestLength = 16 + 56; // struct nlmsghdr + struct inet_diag_req_v2
    private const int NlmsgError = 2;

    /// <summary>The connection from <paramref name="local"/> to <paramref name="remote"/>: its TCP state number and receive queue; null if there is none.</summary>
    public static (int State, int ReceiveQueue)? Find(Endpoint local, Endpoint remote)
    {
        Span<byte> request = stackalloc byte[RequestLength];
        request.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(request, RequestLength);
        BinaryPrimitives.WriteUInt16LittleEndian(request[4..], Interop.SOCK_DIAG_BY_FAMILY);
        BinaryPrimitives.WriteUInt16LittleEndian(request[6..], Interop.NLM_F_REQUEST);
        request[16] = (byte)(local.V6 ? Interop.AF_INET6 : Interop.AF_INET);   // sdiag_family
        request[17] = Interop.IPPROTO_TCP;                                      // sdiag_protocol
        BinaryPrimitives.WriteUInt32LittleEndian(request[20..], uint.MaxValue); // idiag_states: any
        // struct inet_diag_sockid: sport, dport (network order), src[4], dst[4], if, cookie[2]
        BinaryPrimitives.WriteUInt16BigEndian(request[24..], local.Port);
        BinaryPrimitives.WriteUInt16BigEndian(request[26..], remote.Port);
        local.Address.CopyTo(request[28..]);
        remote.Address.CopyTo(request[44..]);
        BinaryPrimitives.WriteUInt64LittleEndian(request[64..], ulong.MaxValue); // INET_DIAG_NOCOOKIE
        Span<byte> response = stackalloc byte[512];
        int n = SockDiag.Exchange(request, response, "SOCK_DIAG_BY_FAMILY", $"TCP {local} ↔ {remote}");
        // inet_diag_msg after the header: family, state, timer, retrans, the sockid (48), expires, rqueue.
        if (BinaryPrimitives.ReadUInt16LittleEndian(response[4..]) == NlmsgError || n < 16 + 60)
            return null;
        return (response[17], BinaryPrimitives.ReadInt32LittleEndian(response[(16 + 56)..]));
    }
}
