using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Amber.Native;

namespace Amber.Kernel.Net;

/// <summary>
/// Tells a network that an address is now reached through this interface: a gratuitous ARP for an
/// IPv4 address (an ARP request for itself, from itself, broadcast), an unsolicited neighbour
/// advertisement for an IPv6 one (to all nodes, override flag set). Neighbours update their caches,
/// and switches and bridges learn the MAC's new port from the frame, so that packets for an address
/// that moved to another node (a migrated group's) go there at once instead of to where it was.
/// Sent on packet sockets in the calling thread's network namespace.
/// </summary>
public static class NeighbourAnnouncement
{
    private static ReadOnlySpan<byte> Broadcast => [0xff, 0xff, 0xff, 0xff, 0xff, 0xff];

    /// <summary>One announcement per address of <paramref name="interfaceName"/> (MAC <paramref name="mac"/>, "02:00:..."); returns the frames sent.</summary>
    /// <exception cref="KernelCallException">The interface is not in this namespace, or a frame could not be sent.</exception>
    public static int Announce(string interfaceName, string mac, IEnumerable<IPAddress> addresses)
    {
        int index = IndexOf(interfaceName);
        byte[] hardware = ParseMac(mac);
        string target = $"interface {interfaceName}";
        // Protocol 0: a socket that only sends (one that receives a protocol is hooked into the stack);
        // each frame's protocol is its address's.
        var socket = new SafeFdHandle(Errnos.Check(Interop.Socket(Interop.AF_PACKET, Interop.SOCK_DGRAM | Interop.SOCK_CLOEXEC, 0), "socket(AF_PACKET)", target));
        try
        {
            int sent = 0;
            foreach (var address in addresses)
            {
                if (address.AddressFamily == AddressFamily.InterNetwork)
                    Send(socket, index, target, Interop.ETH_P_ARP, Broadcast, GratuitousArp(hardware, address));
                else if (address.AddressFamily == AddressFamily.InterNetworkV6 && !address.IsIPv6LinkLocal)
                    Send(socket, index, target, Interop.ETH_P_IPV6, [0x33, 0x33, 0, 0, 0, 1], NeighbourAdvertisement(hardware, address));
                else
                    continue;
                sent++;
            }
            return sent;
        }
        finally
        {
            // Closing a packet socket waits for an RCU grace period (~15 ms here): not on the caller's time.
            ThreadPool.UnsafeQueueUserWorkItem(s => s.Dispose(), socket, preferLocal: false);
        }
    }

    /// <summary>The ARP payload: a request whose sender and target are the address itself.</summary>
    internal static byte[] GratuitousArp(byte[] mac, IPAddress address)
    {
        var arp = new byte[28];
        BinaryPrimitives.WriteUInt16BigEndian(arp, 1);            // Ethernet
        BinaryPrimitives.WriteUInt16BigEndian(arp.AsSpan(2), 0x0800); // IPv4
        arp[4] = 6;
        arp[5] = 4;
        BinaryPrimitives.WriteUInt16BigEndian(arp.AsSpan(6), 1); // request: what Linux's arp_notify sends
        mac.CopyTo(arp, 8);
        address.GetAddressBytes().CopyTo(arp, 14);
        address.GetAddressBytes().CopyTo(arp, 24);               // target hardware address left zero
        return arp;
    }

    /// <summary>The IPv6 packet: ICMPv6 neighbour advertisement of the address, from it, to ff02::1, hop limit 255.</summary>
    internal static byte[] NeighbourAdvertisement(byte[] mac, IPAddress address)
    {
        const int icmpLength = 32; // type, code, checksum, flags, target, option (type 2, length 1, MAC)
        var packet = new byte[40 + icmpLength];
        packet[0] = 0x60;
        BinaryPrimitives.WriteUInt16BigEndian(packet.AsSpan(4), icmpLength);
        packet[6] = 58;   // ICMPv6
        packet[7] = 255;  // hop limit: a neighbour discovery message must have it
        address.GetAddressBytes().CopyTo(packet, 8);
        byte[] allNodes = IPAddress.Parse("ff02::1").GetAddressBytes();
        allNodes.CopyTo(packet, 24);
        var icmp = packet.AsSpan(40);
        icmp[0] = 136;
        BinaryPrimitives.WriteUInt32BigEndian(icmp[4..], 0x2000_0000); // override: replace what caches hold
        address.GetAddressBytes().CopyTo(icmp[8..]);
        icmp[24] = 2; // target link-layer address
        icmp[25] = 1;
        mac.CopyTo(icmp[26..]);
        // The checksum covers a pseudo-header: source, destination, length, next header.
        Span<byte> pseudo = stackalloc byte[40];
        packet.AsSpan(8, 32).CopyTo(pseudo);
        BinaryPrimitives.WriteUInt32BigEndian(pseudo[32..], icmpLength);
        pseudo[39] = 58;
        uint sum = 0;
        for (int i = 0; i < pseudo.Length; i += 2)
            sum += BinaryPrimitives.ReadUInt16BigEndian(pseudo[i..]);
        BinaryPrimitives.WriteUInt16BigEndian(icmp[2..], RawPacket.Checksum(sum, icmp));
        return packet;
    }

    private static unsafe int IndexOf(string name)
    {
        fixed (byte* n = NativeString.Utf8Z(name))
        {
            uint index = Interop.IfNametoindex(n);
            if (index == 0)
                Errnos.Check(-1, "if_nametoindex", $"interface {name}");
            return (int)index;
        }
    }

    private static void Send(SafeFdHandle socket, int index, string target, int protocol, ReadOnlySpan<byte> destination, byte[] payload)
    {
        // struct sockaddr_ll: family, protocol (network order), ifindex, hatype, pkttype, halen, addr[8].
        Span<byte> link = stackalloc byte[20];
        link.Clear();
        BinaryPrimitives.WriteUInt16LittleEndian(link, Interop.AF_PACKET);
        BinaryPrimitives.WriteUInt16BigEndian(link[2..], (ushort)protocol);
        BinaryPrimitives.WriteInt32LittleEndian(link[4..], index);
        link[11] = 6;
        destination.CopyTo(link[12..]);
        nint sent = Interop.Sendto(socket.Fd, payload, (nuint)payload.Length, 0, link, (uint)link.Length);
        Errnos.Check((long)sent, "sendto", target);
    }

    private static byte[] ParseMac(string mac)
    {
        var parts = mac.Split(':');
        if (parts.Length != 6)
            throw new ArgumentException($"'{mac}' is not a MAC address", nameof(mac));
        return [.. parts.Select(p => byte.Parse(p, NumberStyles.HexNumber, CultureInfo.InvariantCulture))];
    }
}
