using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>
/// sendto(2), and the raw sockets amber sends with it: a segment made up as the peer's of a connection
/// being rebuilt (TCP_REPAIR), handed to this host's own stack.
/// </summary>
internal static partial class Interop
{
    internal const int SOCK_RAW = 3;
    internal const int SOCK_CLOEXEC = 0x80000;

    // A raw socket of protocol IPPROTO_RAW sends packets whose IP header the caller wrote
    // (IP_HDRINCL, IPV6_HDRINCL are implied).
    internal const int IPPROTO_RAW = 255;

    [LibraryImport(Libc, EntryPoint = "sendto", SetLastError = true)]
    internal static partial nint Sendto(int fd, ReadOnlySpan<byte> buffer, nuint length, int flags, ReadOnlySpan<byte> address, uint addressLength);
}
