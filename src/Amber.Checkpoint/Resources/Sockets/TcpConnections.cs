using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Net;
using Google.Protobuf;

namespace Amber.Checkpoint.Resources.Sockets;

/// <summary>
/// Established TCP connections, saved and made again with TCP_REPAIR. At checkpoint every connection
/// of the checkpoint is put in repair mode first — then none of them sends anything, not even an
/// ACK, so nothing moves between two of them while each is read — and read once (a socket several
/// fds or processes share is one connection). Each stays in repair mode, held by amber
/// (<see cref="TcpRepairs"/>), until the processes are resumed (repair left) or ended (closed in
/// repair mode: the peer is sent nothing). At restore each is made again in repair mode and held
/// until every process is built, then they all leave it together, before anything runs.
/// Both ends must be in the checkpoint: a peer outside would see its packets go unanswered while
/// the processes are gone and then a reset (that needs the network lock, not done yet).
/// </summary>
public static class TcpConnections
{
    /// <summary>A connected inet stream socket: saved here, once every process's fds are known.</summary>
    public static bool Applies(SocketState s) =>
        s.Connected && s.Type == SocketState.Stream && s.Family is SocketState.Inet or SocketState.Inet6;

    /// <summary>
    /// Reads every TCP connection of <paramref name="processes"/> into its fd's image, in repair
    /// mode, refusing by name any whose peer is not one of them or that is not established.
    /// </summary>
    /// <returns>The connections, held in repair mode; the caller leaves or closes them.</returns>
    public static TcpRepairs Dump(IReadOnlyList<ProcessImage> processes)
    {
        var fds = processes.SelectMany(p => p.Fds.Where(f => f.Socket?.Tcp is not null).Select(f => (Process: p, Fd: f)))
            .GroupBy(e => e.Fd.SocketInode).Select(g => g.First()).ToList();
        var ends = fds.Select(e => (Local: Describe(e.Fd.Socket.LocalAddress), Peer: Describe(e.Fd.Socket.PeerAddress))).ToHashSet();
        foreach (var (process, fd) in fds)
        {
            if (!ends.Contains((Describe(fd.Socket.PeerAddress), Describe(fd.Socket.LocalAddress))))
                throw new UnsupportedResourceException(process.Pid, $"fd {fd.Fd} ({fd.Description}, TCP to {Describe(fd.Socket.PeerAddress)})",
                    "an established TCP connection whose peer is outside the checkpoint", "its peer would see a reset; that needs the network lock");
        }
        var repairs = new TcpRepairs();
        try
        {
            foreach (var (process, fd) in fds)
            {
                var held = HeldFile.CopyOf(process.Pid, fd.Fd);
                repairs.Add(held, ReuseAddress(fd.Socket), ReadOnlyMemory<byte>.Empty);
                TcpRepair.Enter(held.Fd);
            }
            var states = ReadAll(fds, repairs);
            for (int i = 0; i < fds.Count; i++)
            {
                var (process, fd) = fds[i];
                if (states[i].State != TcpState.Established)
                    throw new UnsupportedResourceException(process.Pid, $"fd {fd.Fd} ({fd.Description})", $"a TCP connection in state {states[i].State}");
                fd.Socket.Tcp = ToImage(states[i]);
            }
            // Every fd of a shared socket gets the one reading.
            var byInode = fds.ToDictionary(e => e.Fd.SocketInode, e => e.Fd.Socket.Tcp);
            foreach (var fd in processes.SelectMany(p => p.Fds).Where(f => f.Socket?.Tcp is not null))
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
            var states = repairs.Fds.Select(TcpRepair.Dump).ToList();
            if (repairs.Fds.Select(TcpRepair.QueueEnds).SequenceEqual(before))
                return states;
            if (round == MaxRounds)
                throw new CheckpointException($"process {fds[0].Process.Pid}: its TCP connections kept moving while frozen (packets still arrive)");
        }
    }

    private static int ReuseAddress(SocketImage s) => SocketRestorer.SavedOption(s, SocketState.SocketLevel, SocketState.ReuseAddress);

    /// <summary>
    /// Makes the connection of <paramref name="fd"/> again on <paramref name="created"/>, a new socket
    /// of the process being restored, through a copy amber keeps in <paramref name="repairs"/> until
    /// every process is built.
    /// </summary>
    public static void Restore(int pid, int created, FdImage fd, TcpRepairs repairs)
    {
        var held = HeldFile.CopyOf(pid, created);
        var s = fd.Socket;
        var t = s.Tcp;
        // What was never sent goes out once every end exists (TcpRepairs.Resume): the peer's host would answer RST.
        repairs.Add(held, ReuseAddress(fd.Socket), t.SendQueue.Memory[(t.SendQueue.Length - (int)t.NotSent)..],
            (SocketRestorer.SavedOption(s, SocketState.SocketLevel, SocketState.ReceiveBuffer), SocketRestorer.SavedOption(s, SocketState.SocketLevel, SocketState.SendBuffer)));
        TcpRepair.Restore(held.Fd, new TcpConnectionState(
            s.Family, s.LocalAddress.ToByteArray(), s.PeerAddress.ToByteArray(), (TcpState)t.State, t.SendSeq, t.ReceiveSeq,
            t.SendQueue.ToByteArray(), (int)t.NotSent, t.ReceiveQueue.ToByteArray(), (int)t.Mss, (int)t.SendWindowScale,
            (int)t.ReceiveWindowScale, (TcpOptions)t.Options, t.Timestamp, new TcpWindow(t.SndWl1, t.SndWnd, t.MaxWindow, t.RcvWnd, t.RcvWup)), sendUnsent: false);
    }

    private static TcpConnectionImage ToImage(TcpConnectionState c) => new()
    {
        State = (int)c.State,
        SendSeq = c.SendSequence,
        ReceiveSeq = c.ReceiveSequence,
        SendQueue = ByteString.CopyFrom(c.SendQueue),
        NotSent = (uint)c.NotSentBytes,
        ReceiveQueue = ByteString.CopyFrom(c.ReceiveQueue),
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
    };

    /// <summary>
    /// "127.0.0.1:5432", "[::1]:80"; a v4-mapped IPv6 address as IPv4, so the two ends of one
    /// connection name each other alike whatever their families.
    /// </summary>
    public static string Describe(ByteString address)
    {
        var a = address.Span;
        if (a.Length < 8)
            return "(no address)";
        int port = (a[2] << 8) | a[3];
        if (BitConverter.ToUInt16(a[..2]) == SocketState.Inet)
            return $"{new System.Net.IPAddress(a.Slice(4, 4))}:{port}";
        if (a.Length < 24)
            return "(no address)";
        var ip = new System.Net.IPAddress(a.Slice(8, 16));
        return ip.IsIPv4MappedToIPv6 ? $"{ip.MapToIPv4()}:{port}" : $"[{ip}]:{port}";
    }
}

/// <summary>
/// TCP sockets amber holds in repair mode (copies of the processes' own): while held, the
/// connections send nothing. <see cref="Resume"/> lets them go on; <see cref="Dispose"/> closes them
/// as they are (in repair mode a close sends the peer nothing).
/// </summary>
public sealed class TcpRepairs : IDisposable
{
    /// <param name="ReuseAddress">The program's SO_REUSEADDR, which leaving repair mode clears.</param>
    /// <param name="Unsent">Restored: the bytes never sent, sent once every end exists.</param>
    /// <param name="Buffers">Restored: the buffer sizes the program had (0: left as they are).</param>
    private sealed record Connection(HeldFile Held, int ReuseAddress, ReadOnlyMemory<byte> Unsent, (int Receive, int Send) Buffers);

    private readonly List<Connection> _connections = [];

    /// <summary>Amber's copies of the sockets, in the order they were added.</summary>
    internal IEnumerable<int> Fds => _connections.Select(c => c.Held.Fd);

    internal void Add(HeldFile held, int reuseAddress, ReadOnlyMemory<byte> unsent, (int Receive, int Send) buffers = default) =>
        _connections.Add(new Connection(held, reuseAddress, unsent, buffers));

    /// <summary>Every connection leaves repair mode and goes on. Never throws: returns what failed.</summary>
    public List<string> Resume()
    {
        var problems = new List<string>();
        foreach (var c in _connections)
        {
            try
            {
                TcpRepair.SendUnsent(c.Held.Fd, c.Unsent.Span);
            }
            catch (Exception e) when (e is Kernel.KernelCallException)
            {
                problems.Add($"a TCP connection could not send what it had not sent yet: {e.Message}");
            }
        }
        foreach (var c in _connections)
        {
            try
            {
                TcpRepair.Leave(c.Held.Fd, c.ReuseAddress);
                TcpRepair.SetBufferSizes(c.Held.Fd, c.Buffers.Receive, c.Buffers.Send);
            }
            catch (Exception e) when (e is Kernel.KernelCallException)
            {
                problems.Add($"a TCP connection could not leave repair mode: {e.Message}");
            }
        }
        Dispose();
        return problems;
    }

    public void Dispose()
    {
        foreach (var c in _connections)
            c.Held.Dispose();
        _connections.Clear();
    }
}
