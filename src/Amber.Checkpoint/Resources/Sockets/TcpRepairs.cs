using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Net;

namespace Amber.Checkpoint.Resources.Sockets;

/// <summary>
/// The TCP sockets of a checkpoint or a restore, held by amber (copies of the processes' own) with
/// the network lock on their connections.
/// <para>
/// Checkpoint: in repair mode only while they are read (<see cref="LeaveRepair"/>), then kept as
/// they were by the lock and the freeze. <see cref="Resume"/> lets them go on; when the processes
/// end instead, <see cref="Park"/> hands the lock to the checkpoint first, and once they are gone
/// <see cref="End"/> closes amber's copies in repair mode (the peer is sent nothing).
/// </para>
/// <para>
/// Restore: each socket kept as the processes are built, then every connection made in repair mode
/// (<see cref="Rebuild"/>); <see cref="Resume"/> sends what was never sent and takes them all out of
/// repair mode.
/// </para>
/// </summary>
public sealed class TcpRepairs : IDisposable
{
    /// <param name="ReuseAddress">The program's SO_REUSEADDR, which leaving repair mode clears.</param>
    /// <param name="Restored">Restored: the connection's saved state, whose bytes never sent (and FINs) go out once every end exists.</param>
    /// <param name="Buffers">Restored: the buffer sizes the program had (0: left as they are).</param>
    private sealed record Connection(HeldFile Held, int ReuseAddress, TcpConnectionState? Restored, (int Receive, int Send) Buffers)
    {
        /// <summary>Restore: the socket's family and both addresses (sockaddr bytes), by which it is aborted.</summary>
        public (int Family, byte[] Local, byte[] Remote)? Ends { get; init; }

        public bool InRepair { get; set; } = true;
    }

    private readonly List<Connection> _connections = [];
    private NetworkLock? _lock;

    /// <summary>Restore: the sockets are made again here; the restore's lock is its own.</summary>
    public TcpRepairs()
    {
    }

    /// <summary>Checkpoint: the connections read under <paramref name="networkLock"/>.</summary>
    /// <param name="peersOutside">Those whose peer is not in the checkpoint: locked until it is restored once their processes end.</param>
    internal TcpRepairs(NetworkLock? networkLock, IEnumerable<ConnectionEnds> peersOutside)
    {
        _lock = networkLock;
        PeersOutside = [.. peersOutside];
    }

    /// <summary>What the checkpoint should say of its connections.</summary>
    public List<string> Warnings { get; } = [];

    /// <summary>The connections whose peer is not in the checkpoint.</summary>
    public HashSet<ConnectionEnds> PeersOutside { get; } = [];

    /// <summary>Checkpoint: whether the network lock is on (nft is installed).</summary>
    internal bool Locked => _lock is not null;

    /// <summary>Checkpoint: connections no process holds (waiting to be accepted) locked too.</summary>
    internal void Lock(IReadOnlyCollection<ConnectionEnds> connections) => _lock?.Add(connections);

    /// <summary>Restore: the connections are made again, then aborted once out of repair mode (--tcp-close).</summary>
    public bool Abort { get; set; }

    /// <summary>Amber's copies of the sockets, in the order they were added.</summary>
    internal IEnumerable<int> Fds => _connections.Select(c => c.Held.Fd);

    /// <summary>A socket amber holds, in repair mode.</summary>
    internal void Add(HeldFile held, int reuseAddress, TcpConnectionState? restored = null, (int Receive, int Send) buffers = default,
        (int Family, byte[] Local, byte[] Remote)? ends = null) =>
        _connections.Add(new Connection(held, reuseAddress, restored, buffers) { Ends = ends });

    /// <summary>
    /// Restore: every process is built; every connection is made again on its new socket, in repair
    /// mode, spread over the cores (each is its own socket, a thousand are tens of thousands of calls).
    /// What was never sent waits for <see cref="Resume"/>.
    /// </summary>
    public void Rebuild() =>
        Cores.Spread(_connections.Count, i =>
        {
            if (_connections[i].Restored is { } state)
                TcpRepair.Restore(_connections[i].Held.Fd, state, sendUnsent: false);
        });

    /// <summary>Checkpoint: every socket read leaves repair mode (still locked).</summary>
    internal void LeaveRepair() =>
        Cores.Spread(_connections.Count, i =>
        {
            var c = _connections[i];
            TcpRepair.Leave(c.Held.Fd, c.ReuseAddress);
            c.InRepair = false;
        });

    /// <summary>
    /// Every connection goes on: out of repair mode (after sending what was never sent, for a
    /// restore), then the lock lifted. Never throws: returns what failed.
    /// </summary>
    public List<string> Resume()
    {
        var problems = new List<string>();
        void Problem(string problem)
        {
            lock (problems)
                problems.Add(problem);
        }
        var unsent = _connections.Where(c => c.InRepair && !Abort && c.Restored is not null).ToList();
        Cores.Spread(unsent.Count, i =>
        {
            try
            {
                TcpRepair.SendUnsent(unsent[i].Held.Fd, unsent[i].Restored!);
            }
            catch (KernelCallException e)
            {
                Problem($"a TCP connection could not send what it had not sent yet: {e.Message}");
            }
        });
        var inRepair = _connections.Where(c => c.InRepair).ToList();
        Cores.Spread(inRepair.Count, i =>
        {
            var c = inRepair[i];
            try
            {
                TcpRepair.Leave(c.Held.Fd, c.ReuseAddress);
                c.InRepair = false;
                TcpRepair.SetBufferSizes(c.Held.Fd, c.Buffers.Receive, c.Buffers.Send);
                if (Abort && c.Ends is var (family, local, remote))
                    TcpAbort.Abort(family, local, remote);
            }
            catch (KernelCallException e)
            {
                Problem($"a TCP connection could not leave repair mode: {e.Message}");
            }
        });
        Dispose();
        if (_lock?.Lift() is { } failed)
            problems.Add(failed);
        _lock = null;
        return problems;
    }

    /// <summary>
    /// Checkpoint: the processes are about to end. The lock becomes the checkpoint's in
    /// <paramref name="checkpoint"/>: an amber that dies from now on leaves it there for the restore
    /// (or, if the processes run on, for the next amber to find stale).
    /// </summary>
    public void Park(string checkpoint) => _lock?.Park(checkpoint);

    /// <summary>
    /// Checkpoint: the processes ended. Amber's copies kept their sockets open; in repair mode, a close
    /// sends the peer nothing. The connections with a peer outside stay locked until the checkpoint is
    /// restored, the others are let go. Never throws: returns what went wrong.
    /// </summary>
    public List<string> End()
    {
        var problems = new List<string>();
        foreach (var c in _connections)
        {
            try
            {
                TcpRepair.Enter(c.Held.Fd);
            }
            catch (KernelCallException e)
            {
                problems.Add($"a TCP connection was closed out of repair mode (the lock keeps its FIN from the peer): {e.Message}");
            }
        }
        Dispose();
        var netLock = _lock;
        _lock = null;
        try
        {
            if (netLock?.Release(PeersOutside) is { } failed)
                problems.Add(failed);
        }
        catch (Exception e) when (e is KernelCallException or IOException)
        {
            problems.Add($"the network lock {netLock!.Id} could not be handed to the checkpoint: {e.Message}");
        }
        return problems;
    }

    /// <summary>Closes amber's copies as they are (one in repair mode sends the peer nothing: a restore that failed).</summary>
    public void Dispose()
    {
        foreach (var c in _connections)
            c.Held.Dispose();
        _connections.Clear();
    }
}
