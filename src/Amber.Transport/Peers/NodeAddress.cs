using System.Net;
using System.Net.Sockets;

namespace Amber.Transport.Peers;

/// <summary>Where a node agent listens: ADDR:PORT, an IPv6 address in brackets ([fd00::1]:7411).</summary>
public static class NodeAddress
{
    /// <summary>Whether <paramref name="text"/> is one, and which.</summary>
    public static bool TryParse(string text, out IPEndPoint endpoint) =>
        IPEndPoint.TryParse(text, out endpoint!) && endpoint.Port > 0 && text.Contains(':', StringComparison.Ordinal)
        && (endpoint.AddressFamily == AddressFamily.InterNetwork || text.StartsWith('['));
}
