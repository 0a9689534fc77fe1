using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>One request to the sock_diag netlink interface and its first answer.</summary>
internal static class SockDiag
{
    /// <summary>Sends <paramref name="request"/> (a whole netlink message) and reads the answer into <paramref name="response"/>.</summary>
    /// <returns>How many bytes of <paramref name="response"/> the answer holds.</returns>
    public static unsafe int Exchange(ReadOnlySpan<byte> request, Span<byte> response, string call, string target)
    {
        int nl = Interop.Socket(Interop.AF_NETLINK, Interop.SOCK_DGRAM | Interop.O_CLOEXEC, Interop.NETLINK_SOCK_DIAG);
        Errnos.Check(nl, "socket(AF_NETLINK, NETLINK_SOCK_DIAG)", "amber");
        using var socket = new SafeFdHandle(nl);
        fixed (byte* r = request)
        {
            if (Interop.Send(nl, r, (nuint)request.Length, 0) != request.Length)
                Errnos.Throw($"send({call})", target);
        }
        nint n;
        fixed (byte* p = response)
            n = Interop.Recv(nl, p, (nuint)response.Length, 0);
        if (n < 16)
            Errnos.Throw($"recv({call})", target);
        return (int)n;
    }
}
