using System.Text;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Resources.Sockets;

/// <summary>
/// Recreates a socket that was not connected: same family, type and options, bound to the same
/// address, listening with the same backlog and the TCP connections that waited to be accepted; a UDP
/// socket also connected to its peer, with its queue
/// filled again (<see cref="UdpSockets"/>). A unix socket's file left behind by the old process is
/// removed first (only if it is a socket), as a server restarting on its own path would.
/// </summary>
public static class SocketRestorer
{
    private const int DefaultBacklog = 128;

    /// <param name="tcp">Where a TCP connection made again is held, in repair mode, until every process is built.</param>
    public static int Create(RemoteCalls calls, FdImage fd, TcpRepairs tcp)
    {
        var s = fd.Socket;
        int created = calls.Socket(s.Family, s.Type, s.Protocol, (int)fd.Flags);
        if (s.Family == SocketState.Unix)
        {
            CreateUnix(calls, fd, created);
            return created;
        }
        // An inet socket is set up through amber's copy of it: one plain call each instead of one
        // injected into the process (a thousand connections make tens of thousands of options).
        var copy = HeldFile.CopyOf(calls.Memory.Pid, created);
        try
        {
            foreach (var option in s.Options)
                SetOption((level, name, value) => SocketOptions.SetInt(copy.Fd, level, name, value), option);
            if (s.Family == SocketState.Netlink)
            {
                RestoreNetlink(copy.Fd, s);
                return created;
            }
            if (s.LingerOn)
                SocketOptions.SetLinger(copy.Fd, s.LingerSeconds);
            if (s.Congestion.Length > 0)
                SocketOptions.SetCongestion(copy.Fd, s.Congestion);
            if (s.Tcp is not null)
            {
                // Repair mode binds it beside its listener by itself; its own SO_REUSEADDR comes back once
                // it leaves repair mode (TcpRepairs, which keeps the copy).
                TcpConnections.Restore(copy, fd, tcp);
                copy = null;
                return created;
            }
            // A connection and the listener it came from share a port: a listener is bound with
            // SO_REUSEADDR, then given back its own setting.
            if (IsBound(s))
            {
                SocketOptions.SetInt(copy.Fd, ReuseAddress.Level, ReuseAddress.Name, 1);
                SocketOptions.Bind(copy.Fd, s.LocalAddress.Span);
            }
            if (s.Listening)
                SocketOptions.Listen(copy.Fd, s.Backlog > 0 ? s.Backlog : DefaultBacklog);
            // Under the restore's network lock, which keeps the listener's answers from the peers.
            TcpConnections.RestoreAcceptQueue(copy.Fd, s);
            if (s.Type == SocketState.Datagram)
                UdpSockets.Restore(copy, s, $"fd {fd.Fd} of process {calls.Memory.Pid}");
            if (IsBound(s))
                SocketOptions.SetInt(copy.Fd, ReuseAddress.Level, ReuseAddress.Name, SavedOption(s, ReuseAddress.Level, ReuseAddress.Name));
            return created;
        }
        finally
        {
            copy?.Dispose();
        }
    }

    /// <summary>
    /// A netlink socket bound again to its port id (one never bound, which a first send binds by itself,
    /// is left so), its groups joined: the first 32 with the address, the others one by one.
    /// </summary>
    private static void RestoreNetlink(int socket, SocketImage s)
    {
        if (SocketState.NetlinkAddress(s.LocalAddress.Span) != (0, 0))
            SocketOptions.Bind(socket, s.LocalAddress.Span);
        foreach (int group in SocketState.NetlinkGroupNumbers(s.NetlinkGroups).Where(g => g > 32))
            SocketOptions.SetInt(socket, SocketState.NetlinkLevel, SocketState.NetlinkAddMembership, group);
        if (!s.PeerAddress.IsEmpty)
            SocketOptions.Connect(socket, s.PeerAddress.Span);
    }

    private static void CreateUnix(RemoteCalls calls, FdImage fd, int created)
    {
        var s = fd.Socket;
        foreach (var option in s.Options)
            SetOption((level, name, value) => calls.SetSocketOption(created, level, name, value), option);
        if (IsBound(s))
        {
            string? path = UnixPath(s);
            if (path is not null)
                RemoveStaleSocketFile(calls, path, fd.Fd);
            calls.Bind(created, s.LocalAddress.Span);
            if (path is not null && s.SocketFile is { } file)
                PathAttributes.SetOwnerAndMode(path, file.Uid, file.Gid, file.Mode);
        }
        if (s.Listening)
            calls.Listen(created, s.Backlog > 0 ? s.Backlog : DefaultBacklog);
        // A stream connection to a listener outside (a group's registration socket) is made again
        // now, by the process itself, so the listener sees its credentials. A datagram socket is
        // connected once everything is built (SocketQueueRestorer): its peer may be restored later.
        if (!s.PeerAddress.IsEmpty && s.Type != SocketState.Datagram)
            calls.Connect(created, s.PeerAddress.Span);
    }

    private static readonly (int Level, int Name) ReuseAddress = (SocketState.SocketLevel, SocketState.ReuseAddress);

    /// <summary>
    /// A buffer size was saved as the kernel reports it, twice what was asked (the rest is its
    /// bookkeeping): half is asked again, with the FORCE option, which root may use past the sysctl limit.
    /// </summary>
    private static void SetOption(Action<int, int, int> set, SocketOption option)
    {
        if (option.Level == SocketState.SocketLevel && option.Name is SocketState.ReceiveBuffer or SocketState.SendBuffer)
            set(option.Level, option.Name == SocketState.ReceiveBuffer ? SocketState.ReceiveBufferForce : SocketState.SendBufferForce, option.Value / 2);
        else
            set(option.Level, option.Name, option.Value);
    }

    /// <summary>An unbound socket reports the family only (unix) or the any-address with port 0 (inet).</summary>
    public static bool IsBound(SocketImage s)
    {
        var a = s.LocalAddress.Span;
        if (s.Family == SocketState.Unix)
            return a.Length > 2;
        return a.Length >= 4 && (a[2] != 0 || a[3] != 0);
    }

    /// <summary>The file-system path a unix socket is bound to, or null (unbound, abstract, not unix).</summary>
    public static string? UnixPath(SocketImage s) => s.Family == SocketState.Unix ? UnixPath(s.LocalAddress.Span) : null;

    /// <summary>The file-system path of a unix address, or null (unnamed or abstract).</summary>
    public static string? UnixPath(ReadOnlySpan<byte> address)
    {
        if (address.Length <= 2 || address[2] == 0)
            return null;
        var path = address[2..];
        int nul = path.IndexOf((byte)0);
        return Encoding.UTF8.GetString(nul < 0 ? path : path[..nul]);
    }

    /// <summary>The value a saved socket option had at checkpoint (0 if it was not saved).</summary>
    public static int SavedOption(SocketImage s, int level, int name) =>
        s.Options.FirstOrDefault(o => o.Level == level && o.Name == name)?.Value ?? 0;

    private static void RemoveStaleSocketFile(RemoteCalls calls, string path, int fd)
    {
        if (!FileStat.TryGetNoFollow(path, out var st))
            return;
        if (!st.IsSocket)
            throw new CheckpointException($"fd {fd}: {path} should be the process's unix socket, but it is another kind of file now; not removing it");
        calls.Unlink(path);
    }
}
