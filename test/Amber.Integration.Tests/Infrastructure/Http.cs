using System.Net;
using System.Net.Sockets;
using System.Text;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>A minimal HTTP client: HTTP/1.0, so the server closes the connection and nothing stays established.</summary>
public static class Http
{
    /// <summary>GET / on 127.0.0.1:port; false if nothing answers or the status is not 200.</summary>
    public static bool TryGet(int port, out string body)
    {
        body = "";
        try
        {
            using var socket = new Socket(AddressFamily.InterNetwork, SocketType.Stream, ProtocolType.Tcp) { ReceiveTimeout = 10000 };
            socket.Connect(IPAddress.Loopback, port);
            socket.Send("GET / HTTP/1.0\r\nHost: localhost\r\n\r\n"u8.ToArray());
            var response = new MemoryStream();
            var buffer = new byte[4096];
            int n;
            while ((n = socket.Receive(buffer)) > 0)
                response.Write(buffer, 0, n);
            string text = Encoding.ASCII.GetString(response.ToArray());
            int at = text.IndexOf("\r\n\r\n", StringComparison.Ordinal);
            body = at < 0 ? "" : text[(at + 4)..];
            return text.StartsWith("HTTP/1.1 200", StringComparison.Ordinal);
        }
        catch (SocketException)
        {
            return false;
        }
    }

    /// <summary>Whether something accepts connections on 127.0.0.1:<paramref name="port"/> (of this network namespace).</summary>
    public static bool TryConnect(int port) => TryConnect(IPAddress.Loopback.ToString(), port);

    /// <summary>Whether something accepts connections on <paramref name="address"/>:<paramref name="port"/>.</summary>
    public static bool TryConnect(string address, int port)
    {
        using var client = new TcpClient();
        try
        {
            client.Connect(IPAddress.Parse(address), port);
            return true;
        }
        catch (SocketException)
        {
            return false;
        }
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
