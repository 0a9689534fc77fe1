using System.Net;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Net;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Sockets;

/// <summary>One TCP connection as its packets name it: this end's address and the peer's.</summary>
public sealed record ConnectionEnds(IPEndPoint Local, IPEndPoint Peer)
{
    public override string ToString() => $"{Format(Local)} ↔ {Format(Peer)}";

    private static string Format(IPEndPoint e) => e.AddressFamily == AddressFamily.InterNetworkV6 ? $"[{e.Address}]:{e.Port}" : $"{e.Address}:{e.Port}";
}

/// <summary>
/// The network lock: no packet of the locked TCP connections reaches this host's stack or leaves it,
/// from the moment a checkpoint reads them until they live again. A peer outside the checkpoint sees a
/// pause: its retransmissions are dropped, never answered with a reset, while the connection's own
/// socket is frozen, in repair mode, closed (its processes ended) or not yet made again.
/// <para>
/// Each lock is an nftables table of amber's own, <c>inet amber_lock_ID</c>: a set of the connections'
/// addresses and a rule dropping matching packets on input and output, ahead of conntrack. Its record,
/// <c>/run/amber/netlocks/ID.json</c>, says who holds it: an amber process (by PID and start time), or
/// a checkpoint whose processes were ended, until it is restored (a parked lock). The record is
/// written before the table is made and removed after the table is gone, so a table never outlives
/// its record; a lock whose holder died is stale and <see cref="RemoveStale"/> (every checkpoint,
/// restore and <c>amber check</c>) removes it.
/// </para>
/// </summary>
public sealed class NetworkLock
{
    public const string TablePrefix = "amber_lock_";
    private const string Family = "inet";
    /// <summary>Before conntrack (-200) and anything a firewall hooks at the usual priorities.</summary>
    private const int Priority = -310;

    private static string Home => "/run/amber/netlocks";

    private readonly LockRecord _record;

    private NetworkLock(string id, LockRecord record)
    {
        Id = id;
        _record = record;
    }

    /// <summary>The lock's name: its table is amber_lock_ID.</summary>
    public string Id { get; }

    /// <summary>The image directory of the checkpoint a parked lock waits for; null while amber holds it.</summary>
    public string? Checkpoint => _record.Checkpoint;

    /// <summary>The PID of the amber process holding the lock; null for a parked lock no amber is restoring.</summary>
    public int? HeldBy => _record.Owner?.Pid;

    /// <summary>The ports of listening sockets the lock keeps everything from (a checkpoint's, for its freeze).</summary>
    public IReadOnlyList<int> ListeningPorts => _record.ListeningPorts;

    public IReadOnlyList<ConnectionEnds> Connections => [.. _record.Connections.Select(c => c.Ends)];

    private string Table => TablePrefix + Id;

    /// <summary>
    /// Locks <paramref name="connections"/> for this process. <paramref name="holders"/> are the
    /// processes' fds of each (by index), so that a lock left by an amber that died can give their
    /// sockets back out of repair mode.
    /// </summary>
    /// <param name="listeningPorts">
    /// The ports of the checkpoint's listening sockets: nothing reaches them while the lock is held,
    /// so that no connection completes into an accept queue the checkpoint has already read (the
    /// client's SYN is sent again a second later, to the program running or restored by then).
    /// </param>
    public static NetworkLock Take(IReadOnlyList<ConnectionEnds> connections, IReadOnlyList<IReadOnlyList<SocketHolder>>? holders = null,
        IReadOnlyCollection<int>? listeningPorts = null)
    {
        var record = new LockRecord
        {
            Owner = Holder.Self,
            ListeningPorts = [.. listeningPorts ?? []],
            Connections = [.. connections.Select((c, i) => new LockedConnection(c.Local.ToString(), c.Peer.ToString(), holders?[i].ToList() ?? []))],
        };
        var id = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray().AsSpan(0, 6));
        var netLock = new NetworkLock(id, record);
        using (Directory())
            netLock.Save();
        try
        {
            Nftables.Apply(netLock.Script(), $"network lock {id}");
        }
        catch (KernelCallException e)
        {
            File.Delete(netLock.RecordPath);
            throw new CheckpointException($"the network lock of {connections.Count} TCP connection{(connections.Count == 1 ? "" : "s")} could not be set: {e.Message}", e);
        }
        return netLock;
    }

    /// <summary>
    /// Locks <paramref name="connections"/> too (connections no process holds: those waiting to be
    /// accepted, found once the lock is on), in one nft transaction.
    /// </summary>
    public void Add(IReadOnlyCollection<ConnectionEnds> connections)
    {
        if (connections.Count == 0)
            return;
        _record.Connections.AddRange(connections.Select(c => new LockedConnection(c.Local.ToString(), c.Peer.ToString(), [])));
        using (Directory())
            Save();
        Nftables.Apply(ElementCommands("add", connections), $"network lock {Id}");
    }

    /// <summary>
    /// Hands the lock to the checkpoint in <paramref name="checkpoint"/>, whose processes are about to
    /// end: should this amber die from now on, the lock stays for the restore.
    /// </summary>
    public void Park(string checkpoint)
    {
        _record.Checkpoint = Path.GetFullPath(checkpoint);
        using (Directory())
            Save();
    }

    /// <summary>
    /// The processes of a parked lock ended and their sockets are closed: the connections with a peer
    /// outside the checkpoint stay locked until it is restored; those with both ends in it are let go
    /// (nothing sends for them any more). Returns what went wrong.
    /// </summary>
    public string? Release(IReadOnlyCollection<ConnectionEnds> peersOutside)
    {
        var inside = _record.Connections.Where(c => !peersOutside.Contains(c.Ends)).ToList();
        if (inside.Count == _record.Connections.Count)
            return Lift();
        // The listening ports are locked for the freeze only: a checkpoint that may never be restored
        // must not keep a server started again in its place from being reached.
        Nftables.Apply($"flush set {Family} {Table} listening\n" + ElementCommands("delete", inside.Select(c => c.Ends)), $"network lock {Id}");
        _record.Connections.RemoveAll(inside.Contains);
        _record.ListeningPorts.Clear();
        _record.Owner = null;
        using (Directory())
            Save();
        return null;
    }

    /// <summary>The packets of the connections flow again. Never throws: says what went wrong.</summary>
    public string? Lift()
    {
        try
        {
            Nftables.Apply($"delete table {Family} {Table}\n", $"network lock {Id}");
        }
        catch (KernelCallException) when (!Nftables.Tables(Family).Contains(Table))
        {
            // Already gone (removed as stale by another amber, or by hand): only the record is left.
        }
        catch (KernelCallException e)
        {
            return $"the network lock {Id} could not be lifted: {e.Message}";
        }
        File.Delete(RecordPath);
        return null;
    }

    /// <summary>
    /// The parked locks of <paramref name="connections"/>, taken over by this process for a restore;
    /// given back with <see cref="GiveBack"/> if the restore fails.
    /// </summary>
    public static List<NetworkLock> Adopt(IReadOnlyCollection<ConnectionEnds> connections)
    {
        using var _ = Directory();
        var adopted = new List<NetworkLock>();
        foreach (var l in Records().Where(l => l.Checkpoint is not null && l.Connections.Any(connections.Contains)))
        {
            if (l._record.Owner is { } owner && owner.Alive)
                throw new CheckpointException($"the TCP connection {l.Connections.First(connections.Contains)} is being restored by amber process {owner.Pid} already");
            l._record.Owner = Holder.Self;
            l.Save();
            adopted.Add(l);
        }
        return adopted;
    }

    /// <summary>Parked again, for a later restore of its checkpoint.</summary>
    public void GiveBack()
    {
        _record.Owner = null;
        using (Directory())
            Save();
    }

    /// <summary>Every lock, held or parked.</summary>
    public static List<NetworkLock> All()
    {
        if (!System.IO.Directory.Exists(Home))
            return [];
        using var _ = Directory();
        return Records();
    }

    /// <summary>
    /// Removes every lock whose holder is gone: an amber that died (kill -9) while it held one, a
    /// parked lock whose checkpoint was deleted or whose connections live again (restored by an amber
    /// that died before it lifted the lock). Sockets an amber that died left in repair mode, in
    /// processes that run on, are taken out of it. Returns what was removed. Costs nothing when no
    /// lock exists.
    /// </summary>
    public static List<string> RemoveStale()
    {
        if (!System.IO.Directory.Exists(Home) || !System.IO.Directory.EnumerateFiles(Home, "*.json").Any())
            return [];
        using var _ = Directory();
        var removed = new List<string>();
        List<TcpSocket>? live = null;
        foreach (var l in Records())
        {
            if (l._record.Owner is { } owner && owner.Alive)
                continue;
            string? why = null;
            if (l.Checkpoint is null)
                why = $"amber process {l._record.Owner?.Pid} that held it is gone";
            else if (!System.IO.Directory.Exists(l.Checkpoint))
                why = $"its checkpoint {l.Checkpoint} is gone";
            else
            {
                live ??= TcpSockets.All();
                var ends = live.Where(s => s.State != TcpStateListen).Select(s => new ConnectionEnds(s.Local, s.Remote)).ToHashSet();
                if (l._record.Connections.FirstOrDefault(c => ends.Contains(c.Ends)) is { } back)
                    why = $"its connection {back.Ends} lives again";
            }
            if (why is null)
                continue;
            var problems = l.LeaveRepair();
            var failed = l.Lift();
            removed.Add($"stale network lock {l.Id} ({l._record.Connections.Count} TCP connection{(l._record.Connections.Count == 1 ? "" : "s")}): {why}; "
                + (failed ?? "removed") + string.Concat(problems.Select(p => "; " + p)));
        }
        return removed;
    }

    private const int TcpStateListen = 10;

    /// <summary>The processes' sockets that an amber which died left in repair mode, back out of it.</summary>
    private List<string> LeaveRepair()
    {
        var problems = new List<string>();
        foreach (var h in _record.Connections.SelectMany(c => c.Holders))
        {
            try
            {
                if (!ProcFs.Exists(h.Pid) || ProcFs.ReadFdLink(h.Pid, h.Fd) != $"socket:[{h.Inode}]")
                    continue;
                using var held = HeldFile.CopyOf(h.Pid, h.Fd);
                TcpRepair.Leave(held.Fd, h.ReuseAddress);
            }
            catch (Exception e) when (e is KernelCallException or IOException or TargetGoneException)
            {
                problems.Add($"process {h.Pid} fd {h.Fd} may be left in TCP repair mode: {e.Message}");
            }
        }
        return problems;
    }

    private string Script()
    {
        var s = new StringBuilder();
        s.Append($"table {Family} {Table} {{\n");
        s.Append("  set v4 { type ipv4_addr . inet_service . ipv4_addr . inet_service; }\n");
        s.Append("  set v6 { type ipv6_addr . inet_service . ipv6_addr . inet_service; }\n");
        s.Append("  set listening { type inet_service; }\n");
        foreach (var (chain, hook) in new[] { ("incoming", "input"), ("outgoing", "output") })
        {
            s.Append($"  chain {chain} {{\n    type filter hook {hook} priority {Priority}; policy accept;\n");
            // The peer's FIN a restore forges for a half-closed connection carries amber's mark and passes.
            s.Append($"    meta mark != {TcpRepair.PeerSegmentMark} ip saddr . tcp sport . ip daddr . tcp dport @v4 drop\n");
            s.Append($"    meta mark != {TcpRepair.PeerSegmentMark} ip6 saddr . tcp sport . ip6 daddr . tcp dport @v6 drop\n");
            if (hook == "input")
                s.Append($"    meta mark != {TcpRepair.PeerSegmentMark} tcp dport @listening drop\n");
            s.Append("  }\n");
        }
        s.Append("}\n");
        s.Append(ElementCommands("add", _record.Connections.Select(c => c.Ends)));
        if (_record.ListeningPorts.Count > 0)
            s.Append($"add element {Family} {Table} listening {{ {string.Join(", ", _record.ListeningPorts.Distinct())} }}\n");
        return s.ToString();
    }

    /// <summary>One command per set; the two ends of a connection inside the checkpoint name the same packets, given once.</summary>
    private string ElementCommands(string verb, IEnumerable<ConnectionEnds> connections) =>
        string.Concat(connections.GroupBy(SetOf).Select(set =>
            $"{verb} element {Family} {Table} {set.Key} {{ {string.Join(", ", set.SelectMany(Elements).Distinct())} }}\n"));

    private static string SetOf(ConnectionEnds c) => c.Local.AddressFamily == AddressFamily.InterNetwork ? "v4" : "v6";

    /// <summary>Both directions: packets from the peer to this end and from this end to the peer.</summary>
    private static IEnumerable<string> Elements(ConnectionEnds c) =>
        [$"{c.Peer.Address} . {c.Peer.Port} . {c.Local.Address} . {c.Local.Port}", $"{c.Local.Address} . {c.Local.Port} . {c.Peer.Address} . {c.Peer.Port}"];

    private string RecordPath => Path.Combine(Home, Id + ".json");

    private void Save()
    {
        string temporary = RecordPath + ".tmp";
        File.Delete(temporary);
        using (var file = new FileStream(temporary, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite }))
            JsonSerializer.Serialize(file, _record, NetworkLockJson.Default.LockRecord);
        File.Move(temporary, RecordPath, overwrite: true);
    }

    private static List<NetworkLock> Records()
    {
        var locks = new List<NetworkLock>();
        foreach (var path in System.IO.Directory.EnumerateFiles(Home, "*.json"))
        {
            try
            {
                if (JsonSerializer.Deserialize(File.ReadAllText(path), NetworkLockJson.Default.LockRecord) is { } record)
                    locks.Add(new NetworkLock(Path.GetFileNameWithoutExtension(path), record));
            }
            catch (JsonException)
            {
                // A record torn by a crash mid-write is never renamed into place: this one is foreign.
            }
            catch (FileNotFoundException)
            {
                // Lifted by another amber since it was listed.
            }
        }
        return locks;
    }

    /// <summary>The records' directory (root's alone), locked against another amber for the time of a change.</summary>
    private static ExclusiveLock Directory()
    {
        if (!System.IO.Directory.Exists(Home))
        {
            System.IO.Directory.CreateDirectory(Home, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        }
        var deadline = DateTime.UtcNow.AddSeconds(30);
        while (true)
        {
            if (ExclusiveLock.TryTake(Path.Combine(Home, ".lock")) is { } taken)
                return taken;
            if (DateTime.UtcNow > deadline)
                throw new CheckpointException($"{Home} stayed locked by another amber for 30 s");
            Thread.Sleep(5);
        }
    }
}

/// <summary>A process's fd of a locked connection, as the checkpoint found it.</summary>
public sealed record SocketHolder(int Pid, int Fd, ulong Inode, int ReuseAddress);

/// <summary>An amber process, by PID and start time (a PID alone may be reused).</summary>
internal sealed record Holder(int Pid, ulong StartTime)
{
    public static Holder Self { get; } = new(Environment.ProcessId, ProcFs.ReadStat(Environment.ProcessId).StartTime);

    public bool Alive
    {
        get
        {
            try
            {
                return ProcFs.ReadStat(Pid).StartTime == StartTime;
            }
            catch (Exception e) when (e is IOException or TargetGoneException or FormatException)
            {
                return false;
            }
        }
    }
}

internal sealed record LockedConnection(string Local, string Peer, List<SocketHolder> Holders)
{
    [JsonIgnore]
    public ConnectionEnds Ends => new(IPEndPoint.Parse(Local), IPEndPoint.Parse(Peer));
}

internal sealed class LockRecord
{
    /// <summary>The amber holding the lock; null for a parked lock no amber is restoring.</summary>
    public Holder? Owner { get; set; }

    /// <summary>For a parked lock: the image directory of the checkpoint that holds the connections.</summary>
    public string? Checkpoint { get; set; }

    public List<LockedConnection> Connections { get; set; } = [];

    /// <summary>Ports of listening sockets, locked while a checkpoint holds the lock.</summary>
    public List<int> ListeningPorts { get; set; } = [];
}

[JsonSourceGenerationOptions(WriteIndented = true)]
[JsonSerializable(typeof(LockRecord))]
internal sealed partial class NetworkLockJson : JsonSerializerContext;

/// <summary>
/// The network lock of a restore: a lock of its own on every connection it makes again, from before
/// the first socket exists until every process is released, and the parked locks its checkpoint left
/// (the connections with a peer outside, locked since their processes ended). If the restore fails,
/// its own lock goes and the parked ones are parked again, for a later restore.
/// </summary>
public sealed class RestoreLock : IDisposable
{
    private NetworkLock? _own;
    private List<NetworkLock> _parked;

    private RestoreLock(NetworkLock? own, List<NetworkLock> parked)
    {
        _own = own;
        _parked = parked;
    }

    public static RestoreLock Take(IReadOnlyList<ConnectionEnds> connections)
    {
        // Without nft no checkpoint holds a parked lock, and its connections' ends are all restored
        // here: they are made in repair mode and go live together, as they did before the lock.
        if (connections.Count == 0 || !Nftables.Installed)
            return new RestoreLock(null, []);
        var parked = NetworkLock.Adopt(connections);
        try
        {
            return new RestoreLock(NetworkLock.Take(connections), parked);
        }
        catch
        {
            foreach (var l in parked)
                l.GiveBack();
            throw;
        }
    }

    /// <summary>The restored connections are live: every lock on them goes. Returns what went wrong.</summary>
    public List<string> Lift()
    {
        var problems = _parked.Prepend(_own).Select(l => l?.Lift()).OfType<string>().ToList();
        _own = null;
        _parked = [];
        return problems;
    }

    /// <summary>A restore that did not finish: its own lock goes, the parked ones wait for the next.</summary>
    public void Dispose()
    {
        _own?.Lift();
        foreach (var l in _parked)
            l.GiveBack();
        _own = null;
        _parked = [];
    }
}
