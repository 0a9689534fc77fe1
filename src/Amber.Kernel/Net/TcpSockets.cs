using System.Buffers.Binary;
using System.Globalization;
using System.Net;

namespace Amber.Kernel.Net;

/// <summary>One TCP socket of this network namespace as /proc/net/tcp and tcp6 list it.</summary>
/// <param name="Local">Its address; a v4-mapped IPv6 address is given as IPv4, as its packets carry it.</param>
/// <param name="Remote">Its peer's address (0.0.0.0:0 when it has none).</param>
/// <param name="State">The kernel's TCP state number (1 ESTABLISHED … 10 LISTEN).</param>
/// <param name="Inode">The socket's inode (0 for a connection no fd holds, such as TIME_WAIT).</param>
public sealed record TcpSocket(IPEndPoint Local, IPEndPoint Remote, int State, ulong Inode);

/// <summary>The TCP sockets of this process's network namespace (/proc/net/tcp, /proc/net/tcp6).</summary>
public static class TcpSockets
{
    public static List<TcpSocket> All()
    {
        var sockets = new List<TcpSocket>();
        // The calling thread's network namespace (a checkpoint's thread may have joined its processes').
        foreach (var table in new[] { "/proc/thread-self/net/tcp", "/proc/thread-self/net/tcp6" })
        {
            if (!File.Exists(table))
                continue;
            foreach (var line in File.ReadLines(table).Skip(1))
            {
                // "  0: 0100007F:1F90 0100007F:C350 01 00000000:00000000 00:00000000 00000000 0 0 12345 ..."
                var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (f.Length < 10)
                    continue;
                sockets.Add(new TcpSocket(Endpoint(f[1]), Endpoint(f[2]), int.Parse(f[3], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                    ulong.Parse(f[9], CultureInfo.InvariantCulture)));
            }
        }
        return sockets;
    }

    /// <summary>"0100007F:1F90": the address as the kernel's 32-bit words printed in host order, then the port.</summary>
    private static IPEndPoint Endpoint(string text)
    {
        int colon = text.IndexOf(':');
        var hex = text.AsSpan(0, colon);
        var bytes = new byte[hex.Length / 2];
        for (int word = 0; word < bytes.Length / 4; word++)
        {
            uint value = uint.Parse(hex.Slice(word * 8, 8), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(word * 4), value);
        }
        var address = new IPAddress(bytes);
        if (address.IsIPv4MappedToIPv6)
            address = address.MapToIPv4();
        return new IPEndPoint(address, int.Parse(text.AsSpan(colon + 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture));
    }
}
