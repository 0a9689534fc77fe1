namespace Amber.Native;

/// <summary>
/// Packet sockets (AF_PACKET): whole Ethernet frames sent on an interface, for the announcements that
/// tell a network where an address moved to (gratuitous ARP, unsolicited neighbour advertisement).
/// The frames go out with <see cref="Sendto"/> to a sockaddr_ll.
/// </summary>
internal static partial class Interop
{
    internal const int AF_PACKET = 17;
    internal const int ETH_P_ARP = 0x0806;
    internal const int ETH_P_IPV6 = 0x86DD;

    /// <summary>if_nametoindex(3): the interface's index in the calling thread's network namespace; 0 if it has none of that name.</summary>
    [System.Runtime.InteropServices.LibraryImport(Libc, EntryPoint = "if_nametoindex", SetLastError = true)]
    internal static unsafe partial uint IfNametoindex(byte* name);
}
