using System.Net.Sockets;

namespace Amber.Kernel.Features;

/// <summary>TCP_REPAIR, which dumps and restores established connections (needs CAP_NET_ADMIN).</summary>
internal static class TcpRepairProbe
{
    private const int IPPROTO_TCP = 6;
    private const int TCP_REPAIR = 19;

    public static (bool Present, string Detail) SetRepair()
    {
        using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            socket.SetRawSocketOption(IPPROTO_TCP, TCP_REPAIR, BitConverter.GetBytes(1));
            return (true, "setsockopt(TCP_REPAIR, 1) on a new TCP socket");
        }
        catch (SocketException e)
        {
            return (false, $"setsockopt(TCP_REPAIR): {e.Message}");
        }
    }

    /// <summary>The network lock of TCP connections: nft installed, and nftables answering it.</summary>
    public static (bool Present, string Detail) Nftables()
    {
        if (!Net.Nftables.Installed)
            return (false, "nft not found: TCP connections cannot be checkpointed (apt-get install nftables)");
        int locks = Net.Nftables.Tables("inet").Count(t => t.StartsWith("amber_lock_", StringComparison.Ordinal));
        return (true, $"nft lists the inet tables ({locks} amber lock{(locks == 1 ? "" : "s")} held)");
    }
}
