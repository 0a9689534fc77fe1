using System.Text;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// Socket calls on amber's own copy of a socket (pidfd_getfd): the same socket as the process's, set
/// up with one plain call each instead of one injected into the process (options, bind, connect, listen), and with amber's privileges
/// (SO_MARK needs CAP_NET_ADMIN). Also the options that are not an int: SO_LINGER and TCP_CONGESTION.
/// </summary>
public static class SocketOptions
{
    /// <param name="target">What an error names as the socket (default: "socket FD").</param>
    /// <param name="call">What an error names as the call (default: "setsockopt(LEVEL, NAME)").</param>
    public static unsafe void SetInt(int fd, int level, int name, int value, string? target = null, string? call = null)
    {
        if (Interop.Setsockopt(fd, level, name, &value, sizeof(int)) < 0)
            Errnos.Throw(call ?? $"setsockopt({level}, {name})", target ?? $"socket {fd}");
    }

    /// <param name="target">What an error names as the socket (default: "socket FD").</param>
    /// <param name="call">What an error names as the call (default: "getsockopt(LEVEL, NAME)").</param>
    public static unsafe int GetInt(int fd, int level, int name, string? target = null, string? call = null)
    {
        int value = 0;
        uint length = sizeof(int);
        if (Interop.Getsockopt(fd, level, name, &value, &length) < 0)
            Errnos.Throw(call ?? $"getsockopt({level}, {name})", target ?? $"socket {fd}");
        return value;
    }

    public static void Bind(int fd, ReadOnlySpan<byte> address)
    {
        if (Interop.Bind(fd, address, (uint)address.Length) < 0)
            Errnos.Throw("bind", $"socket {fd}");
    }

    /// <summary>connect(2): for a datagram socket, the peer it sends to by default and the only one it takes datagrams from.</summary>
    public static void Connect(int fd, ReadOnlySpan<byte> address)
    {
        if (Interop.Connect(fd, address, (uint)address.Length) < 0)
            Errnos.Throw("connect", $"socket {fd}");
    }

    public static void Listen(int fd, int backlog)
    {
        if (Interop.Listen(fd, backlog) < 0)
            Errnos.Throw("listen", $"socket {fd}");
    }

    /// <summary>SO_LINGER's seconds when it is on, null when off.</summary>
    public static unsafe int? Linger(int fd)
    {
        int* linger = stackalloc int[2]; // struct linger { int l_onoff; int l_linger; }
        uint length = 8;
        if (Interop.Getsockopt(fd, Interop.SOL_SOCKET, Interop.SO_LINGER, linger, &length) < 0)
            Errnos.Throw("getsockopt(SO_LINGER)", $"socket {fd}");
        return linger[0] != 0 ? linger[1] : null;
    }

    public static unsafe void SetLinger(int fd, int seconds)
    {
        int* linger = stackalloc int[2];
        linger[0] = 1;
        linger[1] = seconds;
        if (Interop.Setsockopt(fd, Interop.SOL_SOCKET, Interop.SO_LINGER, linger, 8) < 0)
            Errnos.Throw("setsockopt(SO_LINGER)", $"socket {fd}");
    }

    /// <summary>A TCP socket's congestion control algorithm ("cubic", "bbr"…).</summary>
    public static string? Congestion(int fd)
    {
        Span<byte> name = stackalloc byte[16]; // TCP_CA_NAME_MAX
        uint length = (uint)name.Length;
        if (Interop.Getsockopt(fd, Interop.IPPROTO_TCP, Interop.TCP_CONGESTION, name, ref length) < 0)
            return null;
        var text = name[..(int)length];
        int nul = text.IndexOf((byte)0);
        return Encoding.ASCII.GetString(nul < 0 ? text : text[..nul]);
    }

    public static void SetCongestion(int fd, string algorithm)
    {
        var name = Encoding.ASCII.GetBytes(algorithm);
        if (Interop.Setsockopt(fd, Interop.IPPROTO_TCP, Interop.TCP_CONGESTION, name, (uint)name.Length) < 0)
            Errnos.Throw($"setsockopt(TCP_CONGESTION, {algorithm})", $"socket {fd}");
    }
}
