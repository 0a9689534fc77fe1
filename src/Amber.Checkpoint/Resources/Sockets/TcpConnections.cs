using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Net;
using Google.Protobuf;
using System.Net;
using System.Net.Sockets;
using System.Runtime.InteropServices;

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
        var everyListener = processes.SelectMany(p => p.Fds.Where(IsTcpListener)).ToList();
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
            return ReadUnder(unlocked, all, fds, listeners, everyListener);
        }
        if (!Nftables.Installed)
            throw new UnsupportedResourceException(fds[connections.IndexOf(peersOutside[0])].Process.Pid, $"{peersOutside.Count} TCP connection(s), e.g. {peersOutside[0]}",
                "a TCP connection whose peer is outside the checkpoint, which needs the network lock: nft is not installed (apt-get install nftables)");
        var repairs = new TcpRepairs(NetworkLock.Take(connections, [.. fds.Select(e => holders[e.Fd.SocketInode].ToList())],
            [.. listeners.Select(e => Endpoint(e.Fd.Socket.LocalAddress).Port)]), peersOutside);
        return ReadUnder(repairs, all, fds, listeners, everyListener);
    }

    private static TcpRepairs ReadUnder(TcpRepairs repairs, List<(ProcessImage Process, FdImage Fd)> all,
        List<(ProcessImage Process, FdImage Fd)> fds, List<(ProcessImage Process, FdImage Fd)> listeners, List<FdImage> everyListener)
    {
        try
        {
            SaveAcceptQueues(repairs, listeners, [.. fds.Select(e => Ends(e.Fd.Socket))]);
            // Every fd of a shared listener names its queue.
            var queues = listeners.Where(e => e.Fd.Socket.AcceptQueue.Count > 0).ToDictionary(e => e.Fd.SocketInode, e => e.Fd.Socket.AcceptQueue);
            foreach (var fd in everyListener.Where(f => queues.ContainsKey(f.SocketInode) && f.Socket.AcceptQueue.Count == 0))
                fd.Socket.AcceptQueue.AddRange(queues[fd.SocketInode]);
            var copies = new HeldFile?[fds.Count];
            try
            {
                Cores.Spread(fds.Count, i =>
                {
                    copies[i] = HeldFile.CopyOf(fds[i].Process.Pid, fds[i].Fd.Fd);
                    TcpRepair.Enter(copies[i]!.Fd);
                });
            }
            finally
            {
                // In fds' order, every copy made (so that a failure takes them all out of repair mode).
                for (int i = 0; i < fds.Count; i++)
                {
                    if (copies[i] is { } held)
                        repairs.Add(held, ReuseAddress(fds[i].Fd.Socket));
                }
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

    /// <summary>
    /// The connections waiting in the listeners' accept queues (the lock keeps new ones from completing
    /// meanwhile): each taken out, read and closed in repair mode, its addresses added to the lock, then
    /// all handed back in the order they came (<see cref="TcpAcceptQueue"/>). The program finds them
    /// waiting as they were; the image keeps them for the restore.
    /// </summary>
    private static void SaveAcceptQueues(TcpRepairs repairs, List<(ProcessImage Process, FdImage Fd)> listeners, IReadOnlyCollection<ConnectionEnds> held)
    {
        var queues = new List<(ProcessImage Process, FdImage Fd, HeldFile Listener, List<QueuedConnection> Connections)>();
        try
        {
            try
            {
                foreach (var (process, fd) in listeners)
                {
                    var copy = HeldFile.CopyOf(process.Pid, fd.Fd);
                    var queue = (process, fd, copy, new List<QueuedConnection>());
                    queues.Add(queue);
                    if (SocketInspector.AcceptQueue(copy.Fd) is not (> 0 and var waiting))
                        continue;
                    if (!repairs.Locked)
                        throw new UnsupportedResourceException(process.Pid, $"fd {fd.Fd} ({fd.Description})",
                            $"a listening socket with {waiting} connection(s) waiting to be accepted, which needs the network lock: nft is not installed (apt-get install nftables)");
                    for (HeldFile? taken; (taken = TcpAcceptQueue.Take(copy.Fd)) is not null;)
                    {
                        using var connection = taken; // closed in repair mode: the peer is sent nothing
                        var state = TcpRepair.Dump(connection.Fd);
                        if (!TcpAcceptQueue.CanRequeue(state))
                            throw new UnsupportedResourceException(process.Pid, $"fd {fd.Fd} ({fd.Description})",
                                $"a listening socket with a connection waiting to be accepted in state {state.State}, which Amber cannot hand back to it");
                        queue.Item4.Add(new QueuedConnection
                        {
                            LocalAddress = ByteString.CopyFrom(state.LocalAddress), PeerAddress = ByteString.CopyFrom(state.RemoteAddress),
                            Tcp = ToImage(state), BootId = BootId.Value,
                        });
                    }
                }
            }
            finally
            {
                // Whatever happened, what was taken goes back: the lock first keeps the listener's
                // answers to the made-up handshake from the peers.
                var taken = queues.SelectMany(q => q.Connections).Select(c => new ConnectionEnds(Endpoint(c.LocalAddress), Endpoint(c.PeerAddress))).ToList();
                repairs.Lock(taken);
                repairs.PeersOutside.UnionWith(taken.Where(c => !held.Contains(new ConnectionEnds(c.Peer, c.Local))));
                HandBack(queues);
            }
        }
        finally
        {
            foreach (var q in queues)
                q.Listener.Dispose();
        }
        foreach (var (_, fd, _, connections) in queues.Where(q => q.Connections.Count > 0))
            fd.Socket.AcceptQueue.AddRange(connections);
    }

    /// <summary>Every connection taken goes back to its listener; one that could not is named (it is lost).</summary>
    private static void HandBack(List<(ProcessImage Process, FdImage Fd, HeldFile Listener, List<QueuedConnection> Connections)> queues)
    {
        var lost = new List<string>();
        foreach (var (process, fd, listener, connections) in queues)
        {
            foreach (var c in connections)
            {
                try
                {
                    TcpAcceptQueue.Requeue(listener.Fd, State(c.LocalAddress, c.PeerAddress, c.Tcp), timestamps: true);
                }
                catch (KernelCallException e)
                {
                    lost.Add($"process {process.Pid} fd {fd.Fd}: the connection {Describe(c.PeerAddress)} waiting to be accepted could not be handed back to its listener, and is lost: {e.Message}");
                }
            }
        }
        if (lost.Count > 0)
            throw new CheckpointException(string.Join("; ", lost));
    }

    /// <summary>
    /// Restore: the connections that waited in listening socket <paramref name="listener"/>'s accept queue
    /// (amber's copy of it, listening), handed back to it in order; their TCP timestamps go on where the
    /// kernel's clock offset is the one they had (the same boot), without them elsewhere.
    /// </summary>
    public static void RestoreAcceptQueue(int listener, SocketImage s)
    {
        foreach (var c in s.AcceptQueue)
            TcpAcceptQueue.Requeue(listener, State(c.LocalAddress, c.PeerAddress, c.Tcp), timestamps: c.BootId == BootId.Value);
    }

    /// <summary>What a restore on this boot says of connections waiting to be accepted that lose their TCP timestamps.</summary>
    public static IEnumerable<string> AcceptQueueWarnings(IEnumerable<ProcessImage> processes)
    {
        var queued = processes.SelectMany(p => p.Fds.Where(f => f.Socket is { AcceptQueue.Count: > 0 }).DistinctBy(f => f.SocketInode).Select(f => (p.Pid, Fd: f)));
        foreach (var (pid, fd) in queued)
        {
            int count = fd.Socket.AcceptQueue.Count(c => c.BootId != BootId.Value && (c.Tcp.Options & (uint)TcpOptions.Timestamps) != 0);
            if (count > 0)
                yield return $"process {pid} fd {fd.Fd}: {count} connection(s) waiting to be accepted come back without TCP timestamps (saved on another boot, where the kernel's timestamp clock differs)";
        }
    }

    /// <summary>This boot's id: the kernel's TCP timestamp offsets are drawn once per boot.</summary>
    private static readonly Lazy<string> BootId = new(() => File.ReadAllText("/proc/sys/kernel/random/boot_id").Trim());

    private static bool IsTcpListener(FdImage f) =>
        f.Socket is { Listening: true, Tcp: null, Type: SocketState.Stream } s && s.Family is SocketState.Inet or SocketState.Inet6;

    /// <summary>The addresses of a connected inet socket, as its packets carry them.</summary>
    public static ConnectionEnds Ends(SocketImage s) => new(Endpoint(s.LocalAddress), Endpoint(s.PeerAddress));

    /// <summary>The TCP connections of a checkpoint, each once (a socket several fds share is one), and those waiting to be accepted.</summary>
    public static List<ConnectionEnds> Of(IEnumerable<ProcessImage> processes)
    {
        var sockets = processes.SelectMany(p => p.Fds).Where(f => f.Socket is not null).DistinctBy(f => f.SocketInode).Select(f => f.Socket).ToList();
        return [.. sockets.Where(s => s.Tcp is not null).Select(Ends),
            .. sockets.SelectMany(s => s.AcceptQueue).Select(c => new ConnectionEnds(Endpoint(c.LocalAddress), Endpoint(c.PeerAddress)))];
    }

    /// <summary>
    /// Every connection read in one round that no packet moved: a socket in repair mode still takes
    /// data and acknowledgments (and retransmits), so one end read before a segment arrived and its
    /// peer read after that segment was acknowledged would lose it. Where every queue ended as it was
    /// read is checked after the round; unchanged, the round is one moment of all of them (a segment
    /// that landed before a reading is in it).
    /// </summary>
    private static List<TcpConnectionState> ReadAll(List<(ProcessImage Process, FdImage Fd)> fds, TcpRepairs repairs)
    {
        const int MaxRounds = 50;
        var held = repairs.Fds.ToList();
        var ends = new (uint, uint, int, int)[held.Count];
        for (int round = 1; ; round++)
        {
            var states = new TcpConnectionState[held.Count];
            Cores.Spread(held.Count, i =>
            {
                var s = fds[i].Fd.Socket;
                states[i] = TcpRepair.Read(held[i], s.Family, s.LocalAddress.ToByteArray(), s.PeerAddress.ToByteArray(), out ends[i]);
            });
            int moved = 0;
            Cores.Spread(held.Count, i =>
            {
                if (TcpRepair.QueueEnds(held[i]) != ends[i])
                    Interlocked.Increment(ref moved);
            });
            if (moved == 0)
                return [.. states];
            if (round == MaxRounds)
                throw new CheckpointException($"process {fds[0].Process.Pid}: its TCP connections kept moving while frozen (packets still arrive)");
        }
    }

    private static int ReuseAddress(SocketImage s) => SocketRestorer.SavedOption(s, SocketState.SocketLevel, SocketState.ReuseAddress);

    /// <summary>
    /// Makes the connection of <paramref name="fd"/> again on <paramref name="held"/>, amber's copy of a
    /// new socket of the process being restored, which <paramref name="repairs"/> keeps until every
    /// process is built, and then rebuilds them all at once (<see cref="TcpRepairs.Rebuild"/>).
    /// </summary>
    public static void Restore(HeldFile held, FdImage fd, TcpRepairs repairs)
    {
        var s = fd.Socket;
        // What was never sent goes out once every end exists (TcpRepairs.Resume): the peer's host would answer RST.
        var state = State(s.LocalAddress, s.PeerAddress, s.Tcp);
        repairs.Add(held, ReuseAddress(fd.Socket), state,
            (SocketRestorer.SavedOption(s, SocketState.SocketLevel, SocketState.ReceiveBuffer), SocketRestorer.SavedOption(s, SocketState.SocketLevel, SocketState.SendBuffer)),
            (s.Family, s.LocalAddress.ToByteArray(), s.PeerAddress.ToByteArray()));
    }

    /// <summary>A connection's state as the image keeps it.</summary>
    private static TcpConnectionState State(ByteString local, ByteString peer, TcpConnectionImage t) => new(
        BitConverter.ToUInt16(local.Span), local.ToByteArray(), peer.ToByteArray(), (TcpState)t.State, t.SendSeq, t.ReceiveSeq,
        Bytes(t.SendQueue), (int)t.NotSent, Bytes(t.ReceiveQueue), (int)t.Mss, (int)t.SendWindowScale,
        (int)t.ReceiveWindowScale, (TcpOptions)t.Options, t.Timestamp, new TcpWindow(t.SndWl1, t.SndWnd, t.MaxWindow, t.RcvWnd, t.RcvWup),
        (TcpFin)t.LocalFin, t.RemoteFinReceived);

    /// <summary>
    /// The bytes of a queue as the parsed image holds them: the array a parsed field owns whole is taken
    /// as it is (a thousand connections' queues are megabytes, and fresh memory costs a fault a page).
    /// </summary>
    private static byte[] Bytes(ByteString bytes) =>
        MemoryMarshal.TryGetArray(bytes.Memory, out var whole) && whole.Offset == 0 && whole.Count == whole.Array!.Length
            ? whole.Array
            : bytes.ToByteArray();

    /// <summary>
    /// Every address a TCP connection of <paramref name="processes"/> was made on must exist on this
    /// machine (in a network namespace of their own: be one the restore makes there, or loopback), and connections waiting to be accepted need nft: checked before anything is made,
    /// naming the first that fails.
    /// </summary>
    public static void CheckAddresses(IEnumerable<ProcessImage> processes, NamespacesImage? namespaces)
    {
        var local = new Dictionary<IPAddress, bool>();
        // In a network namespace of their own, what they will have is what the restore makes there.
        var theirs = namespaces is { Net: true } ? namespaces.Addresses.Select(a => IPAddress.Parse(a.Local)).ToHashSet() : null;
        bool IsLocal(IPAddress address) => theirs is not null ? IPAddress.IsLoopback(address) || theirs.Contains(address)
            : local.TryGetValue(address, out bool known) ? known : local[address] = TcpConnections.IsLocal(address);
        foreach (var p in processes)
        {
            foreach (var fd in p.Fds.Where(f => f.Socket?.Tcp is not null))
            {
                var address = Endpoint(fd.Socket.LocalAddress).Address;
                if (!IsLocal(address))
                    throw new CheckpointException($"process {p.Pid}: fd {fd.Fd} is a TCP connection made on {address}, an address this machine does not have");
            }
            foreach (var fd in p.Fds.Where(f => f.Socket is { AcceptQueue.Count: > 0 }))
            {
                // Handed back by a made-up handshake, whose answers only the lock keeps from the peers.
                if (!Nftables.Installed)
                    throw new CheckpointException($"process {p.Pid}: fd {fd.Fd} has TCP connections waiting to be accepted, which need the network lock: nft is not installed (apt-get install nftables)");
                if (fd.Socket.AcceptQueue.Select(c => Endpoint(c.LocalAddress).Address).FirstOrDefault(a => !IsLocal(a)) is { } missing)
                    throw new CheckpointException($"process {p.Pid}: fd {fd.Fd} has a TCP connection waiting to be accepted made on {missing}, an address this machine does not have");
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
