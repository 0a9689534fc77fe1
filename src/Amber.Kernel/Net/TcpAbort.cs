using System.Buffers.Binary;
using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>
/// Aborts a TCP connection from outside the program that holds it (sock_diag SOCK_DESTROY,
/// CONFIG_INET_DIAG_DESTROY): the socket is closed at once with ECONNABORTED pending, so that the
/// program's next read or write fails, then reads end of file; its peer is sent a reset.
/// </summary>
public static class TcpAbort
{
    private const int SockDestroy = 21;
    private const int RequestLength = 16 + 56; // struct nlmsghdr + struct inet_diag_req_v2
    private const int IpProtoTcp = 6;
    private const int NlmFAck = 4;
    private const int NlmsgError = 2;

    /// <summary>Aborts the connection whose ends are <paramref name="local"/> and <paramref name="remote"/> (sockaddr bytes, as getsockname gives them).</summary>
    public static void Abort(int family, ReadOnlySpan<byte> local, ReadOnlySpan<byte> remote)
    {
        Span<byte> request = stackalloc byte[RequestLength];
        request.Clear();
        BinaryPrimitives.WriteUInt32LittleEndian(request, RequestLength);
        BinaryPrimitives.WriteUInt16LittleEndian(request[4..], SockDestroy);
        BinaryPrimitives.WriteUInt16LittleEndian(request[6..], Interop.NLM_F_REQUEST | NlmFAck);
        request[16] = (byte)family;                                              // sdiag_family
        request[17] = IpProtoTcp;                                                // sdiag_protocol
        BinaryPrimitives.WriteUInt32LittleEndian(request[20..], uint.MaxValue);  // idiag_states: any
        // struct inet_diag_sockid: sport, dport (network order, as in a sockaddr), src[4], dst[4], if, cookie[2]
        local.Slice(2, 2).CopyTo(request[24..]);
        remote.Slice(2, 2).CopyTo(request[26..]);
        Address(family, local).CopyTo(request[28..]);
        Address(family, remote).CopyTo(request[44..]);
        BinaryPrimitives.WriteUInt64LittleEndian(request[64..], ulong.MaxValue); // INET_DIAG_NOCOOKIE
        const string Target = "a TCP connection";
        Span<byte> response = stackalloc byte[512];
        if (SockDiag.Exchange(request, response, "SOCK_DESTROY", Target) < 20)
            throw new KernelCallException("recv(SOCK_DESTROY)", Target, "an answer too short");
        if (BinaryPrimitives.ReadUInt16LittleEndian(response[4..]) == NlmsgError && BinaryPrimitives.ReadInt32LittleEndian(response[16..]) is < 0 and var error)
            throw new KernelCallException("sock_diag(SOCK_DESTROY)", Target, -error);
    }

    /// <summary>The address bytes of a sockaddr_in (4) or sockaddr_in6 (16).</summary>
    private static ReadOnlySpan<byte> Address(int family, ReadOnlySpan<byte> sockaddr) =>
        family == Interop.AF_INET6 ? sockaddr.Slice(8, 16) : sockaddr.Slice(4, 4);
}
