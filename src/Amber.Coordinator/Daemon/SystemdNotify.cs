using System.Net.Sockets;
using System.Text;

namespace Amber.Coordinator.Daemon;

/// <summary>
/// sd_notify(3) without libsystemd: a datagram to the unix socket systemd names in $NOTIFY_SOCKET
/// (a leading '@' is the abstract namespace), for a service of Type=notify. Nothing without it.
/// </summary>
internal static class SystemdNotify
{
    /// <summary>Sends <paramref name="state"/> ("READY=1", "STOPPING=1", "STATUS=..."); returns why it could not, or null.</summary>
    public static string? Send(string state)
    {
        string? path = Environment.GetEnvironmentVariable("NOTIFY_SOCKET");
        if (string.IsNullOrEmpty(path))
            return null;
        if (path[0] == '@')
            path = "\0" + path[1..];
        try
        {
            using var socket = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
            socket.SendTo(Encoding.UTF8.GetBytes(state), new UnixDomainSocketEndPoint(path));
            return null;
        }
        catch (SocketException e)
        {
            return $"systemd could not be told {state.Split('\n')[0]} through {Environment.GetEnvironmentVariable("NOTIFY_SOCKET")}: {e.Message}";
        }
    }
}
