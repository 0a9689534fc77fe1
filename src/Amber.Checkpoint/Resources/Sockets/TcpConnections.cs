using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Net;
using Google.Protobuf;
using System.Net;
using System.Net.Sockets;

namespace Amber.Checkpoint.Resources.Sockets;

/// <summary>
/// Established and half-closed TCP connections, saved and made again with TCP_REPAIR. At checkpoint
/// the <see cref="NetworkLock"/> goes on first (nothing reaches or leaves them, nor the listening
/// ports), then every connection is put in repair mode and read once (a socket several fds or
/// processes share is one connection), and leaves repair mode at once; amber keeps a copy of each
/// (<see cref="TcpRepairs"/>) until the processes are resumed (the lock lifted) or ended (the copies
/// closed in repair mode, the peer sent nothing; the lock parked with the checkpoint for the
/// connections with a peer outside). At restore each is made again in repair mode and held until
/// every process is built, then they all leave it together, before anything runs; the lock is lifted
/// once every process is released: a peer outside the checkpoint sees a pause, never a reset.
/// </summary>
public static class TcpConnections
{
    /// <summary>A connected inet stream socket: saved here, once every process's fds are known.</summary>
    public static bool Applies(SocketState s) =>
        s.Connected && s.Type == SocketState.Stream && s.Family is SocketState.Inet or SocketState.Inet6;

    /// <summary>
    /// Locks every TCP connection of <paramref name="processes"/> and reads it into its fd's image, in
    /// repair mode, refusing by name any that cannot be made again.
    /// </summary>
    /// <returns>The connections, amber's copies and the lock; the caller resumes or ends them.</returns>
    public static TcpRepairs Dump(IReadOnlyList<ProcessImage> processes)
    {
        var all = processes.SelectMany(p => p.Fds.Where(f => f.Socket?.Tcp is not null).Select(f => (Process: p, Fd: f))).ToList();
        var fds = all.GroupBy(e => e.Fd.SocketInode).Select(g => g.First()).ToList();
        var listeners = processes.SelectMany(p => p.Fds.Where(IsTcpListener).Select(f => (Process: p, Fd: f)))
            .DistinctBy(e => e.Fd.SocketInode).ToList();
        if (fds.Count == 0 && listeners.Count == 0)
            return new TcpRepairs();
        var connections = fds.Select(e => Ends(e.Fd.Socket)).ToList();
        var holders = all.ToLookup(e => e.Fd.SocketInode,
            e => new SocketHolder(e.Process.Pid, e.Fd.Fd, e.Fd.SocketInode, ReuseAddress(e.Fd.Socket)));
        var mirrored = connections.Select(c => new ConnectionEnds(c.Peer, c.Local)).ToHashSet();
        var peersOutside = connections.Where(c => !mirrored.Contains(c)).ToList();
        // Without nft: a connection whose peer is outside cannot be saved (its peer would be answered
        // with resets); the others can, as they could before the lock, with what that costs said.
        if (!Nftables.Installed && peersOutside.Count == 0)
        {
            var unlocked = new TcpRepairs(null, []);
            if (listeners.Count > 0)
                unlocked.Warnings.Add("nft is not installed (apt-get install nftables): no network lock was held, so a client connecting during the freeze may have been reset");
            if (fds.Count == 0)
                return unlocked;
            return ReadUnder(unlocked, all, fds, listeners);
        }
        if (!Nftables.Installed)
            throw new UnsupportedResourceException(fds[connections.IndexOf(peersOutside[0])].Process.Pid, $"{peersOutside.Count} TCP connection(s), e.g. {peersOutside[0]}",
                "a TCP connection whose peer is outside the checkpoint, which needs the network lock: nft is not installed (apt-get install nftables)");
        var repairs = new TcpRepairs(NetworkLock.Take(connections, [.. fds.Select(e => holders[e.Fd.SocketInode].ToList())],
            [.. listeners.Select(e => Endpoint(e.Fd.Socket.LocalAddress).Port)]), peersOutside);
        return ReadUnder(repairs, all, fds, listeners);
    }

    private static TcpRepairs ReadUnder(TcpRepairs repairs, List<(ProcessImage Process, FdImage Fd)> all,
        List<(ProcessImage Process, FdImage Fd)> fds, List<(ProcessImage Process, FdImage Fd)> listeners)
    {
        try
        {
            // A connection that completed into an accept queue after its listener was read (and before
            // the lock) would be lost with the process: refused, like one found there at first.
            foreach (var (process, fd) in listeners)
            {
                using var copy = HeldFile.CopyOf(process.Pid, fd.Fd);
                if (SocketInspector.AcceptQueue(copy.Fd) is > 0 and var waiting)
                    throw new UnsupportedResourceException(process.Pid, $"fd {fd.Fd} ({fd.Description})", $"a listening socket with {waiting} connection(s) waiting to be accepted");
            }
            foreach (var (process, fd) in fds)
            {
                var held = HeldFile.CopyOf(process.Pid, fd.Fd);
                repairs.Add(held, ReuseAddress(fd.Socket));
                TcpRepair.Enter(held.Fd);
            }
            var states = ReadAll(fds, repairs);
            // Read: out of repair mode at once, so that an amber that dies from now on leaves working
            // sockets to its programs. The lock and the freeze keep the connections as they were read.
            repairs.LeaveRepair();
            Faults.Check(FaultPoint.AfterNetworkLock);
            for (int i = 0; i < fds.Count; i++)
            {
                var (process, fd) = fds[i];
                if (!TcpRepair.CanRebuild(states[i].State))
                    throw new UnsupportedResourceException(process.Pid, $"fd {fd.Fd} ({fd.Description})", $"a TCP connection in state {states[i].State}, which TCP_REPAIR cannot make again");
                fd.Socket.Tcp = ToImage(states[i]);
            }
            // Every fd of a shared socket gets the one reading.
            var byInode = fds.ToDictionary(e => e.Fd.SocketInode, e => e.Fd.Socket.Tcp);
            foreach (var (_, fd) in all)
                fd.Socket.Tcp = byInode[fd.SocketInode];
            return repairs;
        }
        catch
        {
            repairs.Resume();
            throw;
        }
    }

    private static bool IsTcpListener(FdImage f) =>
        f.Socket is { Listening: true, Tcp: null, Type: SocketState.Stream } s && s.Family is SocketState.Inet or SocketState.Inet6;

    /// <summary>The addresses of a connected inet socket, as its packets carry them.</summary>
    public static ConnectionEnds Ends(SocketImage s) => new(Endpoint(s.LocalAddress), Endpoint(s.PeerAddress));

    /// <summary>The TCP connections of a checkpoint, each once (a socket several fds share is one).</summary>
    public static List<ConnectionEnds> Of(IEnumerable<ProcessImage> processes) =>
        [.. processes.SelectMany(p => p.Fds).Where(f => f.Socket?.Tcp is not null).DistinctBy(f => f.SocketInode).Select(f => Ends(f.Socket))];

    /// <summary>
    /// Every connection read in one round that no packet moved: a socket in repair mode still takes
    /// data and acknowledgments (and retransmits), so one end read before a segment arrived and its
    /// peer read after that segment was acknowledged would lose it. Where every queue ends is taken
    /// before and after the round; equal, the round is one moment of all of them.
    /// </summary>
    private static List<TcpConnectionState> ReadAll(List<(ProcessImage Process, FdImage Fd)> fds, TcpRepairs repairs)
    {
        const int MaxRounds = 50;
        for (int round = 1; ; round++)
        {
            var before = repairs.Fds.Select(TcpRepair.QueueEnds).ToList();
            var states = repairs.Fds.Select(fd => TcpRepair.Dump(fd, settle: false)).ToList();
            if (repairs.Fds.Select(TcpRepair.QueueEnds).SequenceEqual(before))
                return states;
            if (round == MaxRounds)
                throw new CheckpointException($"process {fds[0].Process.Pid}: its TCP connections kept moving while frozen (packets still arrive)");
        }
    }

    private static int ReuseAddress(SocketImage s) => SocketRestorer.SavedOption(s, SocketState.SocketLevel, SocketState.ReuseAddress);

    /// <summary>
    /// Makes the connection of <paramref name="fd"/> again on <paramref name="held"/>, amber's copy of a
    /// new socket of the process being restored, which <paramref name="repairs"/> keeps until every
    /// process is built.
    /// </summary>
    public static void Restore(HeldFile held, FdImage fd, TcpRepairs repairs)
    {
        var s = fd.Socket;
        var t = s.Tcp;
        // What was never sent goes out once every end exists (TcpRepairs.Resume): the peer's host would answer RST.
        var state = new TcpConnectionState(
            s.Family, s.LocalAddress.ToByteArray(), s.PeerAddress.ToByteArray(), (TcpState)t.State, t.SendSeq, t.ReceiveSeq,
            t.SendQueue.ToByteArray(), (int)t.NotSent, t.ReceiveQueue.ToByteArray(), (int)t.Mss, (int)t.SendWindowScale,
            (int)t.ReceiveWindowScale, (TcpOptions)t.Options, t.Timestamp, new TcpWindow(t.SndWl1, t.SndWnd, t.MaxWindow, t.RcvWnd, t.RcvWup),
            (TcpFin)t.LocalFin, t.RemoteFinReceived);
        repairs.Add(held, ReuseAddress(fd.Socket), state,
            (SocketRestorer.SavedOption(s, SocketState.SocketLevel, SocketState.ReceiveBuffer), SocketRestorer.SavedOption(s, SocketState.SocketLevel, SocketState.SendBuffer)),
            (s.Family, s.LocalAddress.ToByteArray(), s.PeerAddress.ToByteArray()));
        TcpRepair.Restore(held.Fd, state, sendUnsent: false);
    }

    /// <summary>
    /// Every address a TCP connection of <paramref name="processes"/> was made on must exist on this
    /// machine: checked before anything is made, naming the first that does not.
    /// </summary>
    public static void CheckAddresses(IEnumerable<ProcessImage> processes)
    {
        foreach (var p in processes)
        {
            foreach (var fd in p.Fds.Where(f => f.Socket?.Tcp is not null))
            {
                var local = Endpoint(fd.Socket.LocalAddress).Address;
                if (!IsLocal(local))
                    throw new CheckpointException($"process {p.Pid}: fd {fd.Fd} is a TCP connection made on {local}, an address this machine does not have");
            }
        }
    }

    /// <summary>Whether this machine has <paramref name="address"/>: a socket can be bound to it.</summary>
    private static bool IsLocal(IPAddress address)
    {
        try
        {
            using var probe = new Socket(address.AddressFamily, SocketType.Dgram, ProtocolType.Udp);
            probe.Bind(new IPEndPoint(address, 0));
            return true;
        }
        catch (SocketException e) when (e.SocketErrorCode == SocketError.AddressNotAvailable)
        {
            return false;
        }
    }

    private static TcpConnectionImage ToImage(TcpConnectionState c) => new()
    {
        State = (int)c.State,
        SendSeq = c.SendSequence,
        ReceiveSeq = c.ReceiveSequence,
        // The arrays are the dump's own, used nowhere else: wrapped, not copied again.
        SendQueue = UnsafeByteOperations.UnsafeWrap(c.SendQueue),
        NotSent = (uint)c.NotSentBytes,
        ReceiveQueue = UnsafeByteOperations.UnsafeWrap(c.ReceiveQueue),
        Mss = (uint)c.MaxSegmentSize,
        SendWindowScale = (uint)c.SendWindowScale,
        ReceiveWindowScale = (uint)c.ReceiveWindowScale,
        Options = (uint)c.Options,
        Timestamp = c.Timestamp,
        SndWl1 = c.Window.SendWl1,
        SndWnd = c.Window.SendWindow,
        MaxWindow = c.Window.MaxWindow,
        RcvWnd = c.Window.ReceiveWindow,
        RcvWup = c.Window.ReceiveWindowUpdate,
        LocalFin = (int)c.LocalFin,
        RemoteFinReceived = c.RemoteFinReceived,
    };

    /// <summary>
    /// "127.0.0.1:5432", "[::1]:80"; a v4-mapped IPv6 address as IPv4, so the two ends of one
    /// connection name each other alike whatever their families.
    /// </summary>
    public static string Describe(ByteString address) =>
        Endpoint(address) is { } e ? e.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{e.Address}]:{e.Port}" : $"{e.Address}:{e.Port}" : "(no address)";

    /// <summary>A sockaddr_in or sockaddr_in6 as an endpoint; a v4-mapped IPv6 address as IPv4, as its packets carry it.</summary>
    private static IPEndPoint Endpoint(ByteString address)
    {
        var a = address.Span;
        if (a.Length < 8)
            return new IPEndPoint(IPAddress.Any, 0);
        int port = (a[2] << 8) | a[3];
        if (BitConverter.ToUInt16(a[..2]) == SocketState.Inet)
            return new IPEndPoint(new IPAddress(a.Slice(4, 4)), port);
        if (a.Length < 24)
            return new IPEndPoint(IPAddress.IPv6Any, 0);
        var ip = new IPAddress(a.Slice(8, 16));
        return new IPEndPoint(ip.IsIPv4MappedToIPv6 ? ip.MapToIPv4() : ip, port);
    }
}
