using System.Text;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>The socket options that are not an int: SO_LINGER (a struct) and TCP_CONGESTION (a name).</summary>
public static class SocketOptions
{
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
