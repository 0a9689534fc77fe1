using System.Text.Json;
using System.Net;
using System.Net.Sockets;
using Amber.Coordinator.Control;
using Amber.Coordinator.Daemon;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;
using Amber.Coordinator.Store;
using Amber.Transport.Cluster;
using Amber.Transport.Migration;
using Amber.Transport.Peers;
using Microsoft.Extensions.Logging;

namespace Amber.Transport;

/// <summary>
/// The node agent (amber agent): the coordinator of this node with a listener for the other nodes
/// of its cluster. Every connection is TLS 1.3 with both certificates checked against the cluster's
/// CA (<see cref="NodeIdentity"/>); one that fails the handshake is dropped before anything else is
/// read. A peer may only hand a group over to this node (a migration's receiving end). Given the
/// cluster's store (etcd), the node registers there and stays listed while it lives (<see cref="NodeRegistration"/>).
/// </summary>
public sealed class NodeAgent : INodeAgent
{
    private readonly NodeIdentity _identity;
    private readonly IPEndPoint _listen;
    private readonly TimeSpan _peerTimeout;
    private readonly CancellationTokenSource _stop = new();
    private readonly PageLinks _pageLinks = new();
    private readonly (EtcdClient Client, int TtlSeconds)? _store;
    private readonly long _started = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
    private NodeRegistration? _registration;
    private GroupRecovery? _recovery;
    private NodeFence? _fence;
    private readonly HashSet<string> _recovering = new(StringComparer.Ordinal);
    private readonly System.Collections.Concurrent.ConcurrentDictionary<string, RestoreGate> _restores = new(StringComparer.Ordinal);
    private StoreView? _view;
    private Socket? _listener;
    private NodeServices? _services;
    private ILogger? _logger;

    /// <param name="identity">This node: its certificate, and the cluster's CA.</param>
    /// <param name="listen">Where the other nodes reach it.</param>
    /// <param name="peerTimeout">How long a peer may say nothing before its connection is given up (a dead node, a cut link); 30 s if null.</param>
    /// <param name="store">The cluster's store the node registers in, and its lease's TTL (disposed with the agent); null: none.</param>
    public NodeAgent(NodeIdentity identity, IPEndPoint listen, TimeSpan? peerTimeout = null, (EtcdClient Client, int TtlSeconds)? store = null)
    {
        _identity = identity;
        _listen = listen;
        _peerTimeout = peerTimeout ?? PeerLink.DefaultTimeout;
        _store = store;
    }

    /// <inheritdoc/>
    public void Start(NodeServices services)
    {
        _services = services;
        _logger = services.Loggers.CreateLogger<NodeAgent>();
        var listener = new Socket(_listen.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            listener.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            listener.Bind(_listen);
            listener.Listen(16);
        }
        catch (SocketException e)
        {
            listener.Dispose();
            throw new IOException($"the agent cannot listen on {_listen}: {e.Message}", e);
        }
        _listener = listener;
        _logger.AgentListening(_identity.Name, _listen.ToString(), "ca.crt");
        new Thread(AcceptAll) { IsBackground = true, Name = "amber-agent" }.Start();
        if (_store is var (client, ttl))
        {
            _view = new StoreView(client, _identity.Name, Path.Combine(services.Home.StateDirectory, "catalog-pending"), services.Loggers.CreateLogger<StoreView>());
            _fence = new NodeFence(services, _identity, () => _registration, _view, client, services.Loggers.CreateLogger<NodeFence>());
            _registration = new NodeRegistration(client, _identity.Name, ttl, Describe, services.Loggers.CreateLogger<NodeRegistration>(),
                reached: () =>
                {
                    _view.Refresh();
                    TakeSettings();
                    PruneCopies();
                    _fence.Lift();
                },
                registered: () =>
                {
                    _view.Refresh(); // which groups are across nodes, for what follows
                    TakeSettings();
                    _fence.Registered();
                });
            _registration.Start();
            _recovery = new GroupRecovery(client, _identity.Name, TimeSpan.FromSeconds(ttl), () => _registration.Lease == 0 ? null : Across()?.Leader,
                services.Loggers.CreateLogger<GroupRecovery>());
            _recovery.Start();
            _fence.Start();
        }
    }

    /// <summary>This node as a peer reaches it: its name and agent's address.</summary>
    private NodeRecord Self => new() { Name = _identity.Name, Address = _listen.ToString() };

    /// <summary>This node as the cluster's store lists it.</summary>
    private NodeRecord Describe() => new()
    {
        Name = _identity.Name,
        Address = _listen.ToString(),
        Cpus = Environment.ProcessorCount,
        MemoryBytes = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes,
        StartedUnixMs = _started,
        Groups = [.. _services!.Groups().Select(group =>
        {
            StoredCheckpoint? latest;
            try
            {
                latest = group.Store.LatestWhole(group.Config.Storage.Count > 0);
            }
            catch (IOException)
            {
                latest = null; // its store unreadable now: said by the group's own operations
            }
            return new NodeGroup
            {
                Name = group.Config.Name, PartOf = group.Config.PartOf, Processes = group.LiveProcesses(),
                Latest = latest?.Id ?? "", LatestUnixMs = latest?.Created.ToUnixTimeMilliseconds() ?? 0,
            };
        }).OrderBy(g => g.Name, StringComparer.Ordinal)],
    };

    /// <inheritdoc/>
    public ControlResponse Migrate(GroupRuntime group, MigrateRequest request, Requester who, Action<ProgressSample>? progress)
    {
        string name = group.Config.Name, across = group.Config.Across;
        ControlResponse response;
        string arrivedAs;
        var (placement, unplaced) = Placement(group);
        using (var source = new MigrationSource(_services!, _identity, _services!.Loggers.CreateLogger<MigrationSource>(), _peerTimeout, placement))
        {
            response = source.Migrate(group, request, progress);
            arrivedAs = source.ArrivedAs;
        }
        if (response.Ok && unplaced is not null)
            response.Stderr.Insert(0, $"warning: the catalog does not place it on its new node before its leader's next checkpoint across nodes: {unplaced}");
        // A part of a group across nodes runs elsewhere now: the catalog's latest checkpoint across nodes
        // still places it here, which a loss of this node or that one would act on. Its leader takes one
        // across the nodes it runs on now, once the store lists it there.
        if (response.Ok && _store is var (store, _) && _view?.IsAcross(across) == true)
        {
            _registration?.Changed(); // the store lists it here no longer, at once
            new Thread(() =>
            {
                try
                {
                    _logger!.CheckpointAfterMove(name, across, CheckpointAfterMove(store, name, arrivedAs, across, request.To));
                }
                catch (Exception e)
                {
                    _logger!.WatchFailed($"group {name}'s checkpoint across nodes after its move", e.ToString().ReplaceLineEndings(" | "));
                }
            })
            { IsBackground = true, Name = "amber-moved-part" }.Start();
            response.Stderr.Add($"group {name} is a part of group {across}, which runs on other nodes too: its leader checkpoints it across the nodes it runs on now (this node's log says when)");
        }
        return response;
    }

    /// <summary>
    /// The name a part of a group across nodes arrives as from <paramref name="from"/> if its own is
    /// another part's of the same group on this node (a node drained onto the others): NAME.FROM, a part
    /// of group NAME, as a part restored from a lost node's copy is; null otherwise.
    /// </summary>
    private string? ArrivingPartName(GroupConfig sent, string from) =>
        sent.PartOf.Length == 0 && _services!.Find(sent.Name) is { Config.PartOf.Length: 0 } && _view?.IsAcross(sent.Name) == true
            ? GroupLeader.PartName(sent.Name, from) : null;

    /// <summary>How a migration of <paramref name="group"/> places it in the catalog: null if it is no part of a group across nodes, or cannot (and then why).</summary>
    private (MovePlacement? Placement, string? Why) Placement(GroupRuntime group)
    {
        if (_store is not var (store, _) || _view?.IsAcross(group.Config.Across) != true)
            return (null, null);
        try
        {
            return (MovePlacement.Find(store, _identity.Name, group, group.Config.Across, out string? why), why);
        }
        catch (EtcdException e)
        {
            return (null, $"the cluster's store is out of reach: {e.Message}");
        }
    }

    /// <summary>The part, moved to the agent at <paramref name="to"/> (as its group <paramref name="arrivedAs"/>), seen there in the store and no longer here, then the group's leader asked to checkpoint the group across nodes: what came of it, one line.</summary>
    private string CheckpointAfterMove(EtcdClient store, string part, string arrivedAs, string across, string to)
    {
        var deadline = DateTime.UtcNow + (_registration?.Ttl ?? TimeSpan.FromSeconds(10)) * 2;
        try
        {
            bool There(NodeRecord n) => IPEndPoint.TryParse(n.Address, out var at) && IPEndPoint.TryParse(to, out var dest) && at.Equals(dest);
            bool Runs(NodeRecord? n, string name) => n is not null && n.Groups.Any(g => g.Name == name && g.Across == across && g.Processes.Count > 0);
            while (!GroupLeader.LiveNodes(store, _identity.Name).Any(n => There(n) && Runs(n, arrivedAs))
                || Runs(NodeRecord.Read(store, _identity.Name), part))
            {
                if (DateTime.UtcNow > deadline)
                    return $"the cluster's store does not list it on the node at {to}";
                Thread.Sleep(200);
            }
        }
        catch (EtcdException e)
        {
            return $"the cluster's store is out of reach: {e.Message}";
        }
        return AskLeader(store, across, new PeerMessage { Op = Ops.Recover, Mode = "checkpoint", Name = across, Part = part });
    }

    /// <inheritdoc/>
    public string Name => _identity.Name;

    /// <inheritdoc/>
    public ControlResponse RunOn(RunRequest request, Requester who)
    {
        if (_store is not var (store, _))
            return ControlResponse.Failure($"--node {request.Node}: this node's agent knows no cluster's store to find node {request.Node} in (amber agent ... --etcd URL)");
        NodeRecord? node;
        try
        {
            node = NodeRecord.Read(store, request.Node);
        }
        catch (EtcdException e)
        {
            return ControlResponse.Failure($"--node {request.Node}: the cluster's store is out of reach: {e.Message}");
        }
        if (node is null || !IPEndPoint.TryParse(node.Address, out var address))
            return ControlResponse.Failure($"--node {request.Node}: the cluster's store lists no live node {request.Node}");
        // Its member here, if the group has one: the part whose settings the group's are, until the store has some.
        if (_services!.Find(request.Group) is { } local && Policy(request, GroupPolicy.Of(local.Config).With(request), out string? problem) is null && problem is not null)
            return ControlResponse.Failure(problem);
        try
        {
            using var link = PeerLink.Connect(address, _identity, _peerTimeout);
            link.Greet();
            var wire = request.ToWire();
            link.Send(new PeerMessage { Op = Ops.Run, Request = JsonSerializer.Serialize(wire, ControlJson.Default.ControlRequest), For = who.ToArgument() });
            var answer = link.Expect(Ops.Ok);
            return JsonSerializer.Deserialize(answer.Request, ControlJson.Default.ControlResponse) ?? ControlResponse.Failure($"node {request.Node} gave an empty answer");
        }
        catch (Exception e) when (e is IOException or JsonException)
        {
            return ControlResponse.Failure($"--node {request.Node}: {e.Message}");
        }
    }

    /// <summary>A program run here for a user of another node (amber run --node): handled as that user's request on this node's control socket.</summary>
    private void RunFor(PeerLink link, PeerMessage message)
    {
        ControlRequest? wire;
        Requester who;
        try
        {
            wire = JsonSerializer.Deserialize(message.Request, ControlJson.Default.ControlRequest);
            who = Requester.Parse(message.For);
        }
        catch (Exception e) when (e is JsonException or FormatException or IndexOutOfRangeException or OverflowException)
        {
            link.Send(PeerMessage.Failure($"node {link.Peer} sent a run request that is not one: {e.Message}"));
            return;
        }
        // (It names this node: a member of a group across nodes, whose settings the store keeps.)
        if (wire is null || wire.Op != RunRequest.Op || (wire.Node is not null && wire.Node != _identity.Name))
        {
            link.Send(PeerMessage.Failure($"node {link.Peer} may only ask this node to run a program"));
            return;
        }
        var response = _services!.Handle(wire, who);
        _logger!.RanFor(wire.Group, link.Peer, who.Uid, response.Ok ? string.Join(" ", response.Stdout) : response.Error);
        link.Send(new PeerMessage { Op = Ops.Ok, Request = JsonSerializer.Serialize(response, ControlJson.Default.ControlResponse) });
    }

    /// <inheritdoc/>
    public GroupPolicy? Policy(RunRequest request, GroupPolicy own, out string? problem)
    {
        problem = null;
        if (_store is not var (store, _))
            return null;
        string name = request.Group;
        bool across = request.Node.Length > 0 || _view?.IsAcross(name) == true;
        try
        {
            // Written only over what was read: two nodes changing the group's settings at once both count.
            for (int attempt = 1; ; attempt++)
            {
                var (found, revision) = GroupCatalog.Settings(store, name);
                if (found is null && revision == 0 && !across)
                    return null; // a group of this node's alone
                _view?.Joined(name); // (one made across nodes since this node last saw the store)
                var policy = (found ?? own).With(request);
                if (policy == found)
                    return policy;
                if (GroupCatalog.SetSettings(store, name, policy, revision))
                {
                    _logger!.SettingsWritten(name, policy.ToString());
                    return policy;
                }
                if (attempt == 5)
                {
                    problem = $"group {name}: its settings in the cluster's store changed under this request five times; try again";
                    return null;
                }
            }
        }
        catch (EtcdException e)
        {
            // Its part here runs with the settings it has (the store's, as last taken); a change now would
            // be this node's alone, and undone by the store's once it is back.
            if (across && GroupPolicy.GivenBy(request))
                problem = $"group {name} runs on several nodes, and its settings are the cluster's: the cluster's store is out of reach ({e.Message}); run it without settings, or once the store is back";
            return null;
        }
    }

    /// <summary>
    /// Every part of a group across nodes here given the group's settings, as the store had them when
    /// last seen (after each renewal of this node's lease): a part busy now takes them at the next one.
    /// </summary>
    private void TakeSettings()
    {
        foreach (var group in _services!.Groups())
        {
            if (_view!.Settings(group.Config.Across) is not { } policy || GroupPolicy.Of(group.Config) == policy || !group.Busy.Wait(0))
                continue;
            try
            {
                if (_services.Find(group.Config.Name) != group)
                    continue; // removed, or migrated away, meanwhile
                var changes = policy.ApplyTo(group.Config);
                group.Schedule.Restart(group.Config.EverySeconds);
                group.Save();
                _logger!.SettingsTaken(group.Config.Name, group.Config.Across, string.Join(", ", changes));
            }
            finally
            {
                group.Busy.Release();
            }
        }
    }

    /// <summary>The copies of other nodes' parts that the catalog no longer needs here removed (<see cref="Replicas.Prune"/>), after a renewal of this node's lease.</summary>
    private void PruneCopies()
    {
        try
        {
            foreach (string removed in Replicas.Prune(_services!.Home, _identity.Name, _view!.Group))
                _logger!.CopyPruned(removed);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            _logger!.WatchFailed("the removal of copies the catalog no longer needs", e.Message);
        }
    }

    /// <inheritdoc/>
    public ControlResponse? CheckpointAcrossNodes(GroupRuntime group, CheckpointRequest request, Requester who, Action<ProgressSample>? progress, bool scheduled = false)
    {
        if (Across() is not { } across)
            return null;
        string name = group.Config.Name;
        if (group.Config.PartOf.Length > 0 && scheduled)
            return new ControlResponse { Ok = true, Stderr = [$"group {name} is a part of group {group.Config.PartOf}: its leader's schedule checkpoints it with that group"] };
        if (group.Config.PartOf.Length > 0)
            return ControlResponse.Failure($"group {name} is a part of group {group.Config.PartOf} that came to this node from a lost one: it is checkpointed with that group (amber checkpoint --group {group.Config.PartOf} on its leader)");
        var self = Self;
        List<PartOnNode> others;
        try
        {
            var live = GroupLeader.LiveNodes(across.Store, _identity.Name);
            _view!.Saw(live);
            others = GroupLeader.PartsOf(live, name, _services!, self, held: name);
            if (scheduled && others.Count > 0 && GroupCatalog.Leader(across.Store, name) is { Length: > 0 } leader && leader != _identity.Name)
                return new ControlResponse { Ok = true, Stderr = [$"group {name} runs on other nodes too, and node {leader} leads it: its schedule checkpoints the group across nodes"] };
            // The lead decided here, once: a lead taken now may be a lost node's, gone with its lease
            // after the nodes were read, so they are read again and the lost node is no part of the
            // checkpoint (a lead held already: no need; another's: refused here, not by a campaign
            // of the checkpoint's own that a lease running out meanwhile would let win).
            bool taken = false;
            if (others.Count > 0 && across.Leader.Lead(name, out taken) is { } notLeader)
                return ControlResponse.Failure(notLeader);
            if (taken)
            {
                live = GroupLeader.LiveNodes(across.Store, _identity.Name);
                _view.Saw(live);
                others = GroupLeader.PartsOf(live, name, _services!, self, held: name);
            }
        }
        catch (EtcdException e)
        {
            // A group this node led when it last saw the store: across its nodes as last seen, the
            // entry recorded once the store answers. Otherwise its members here alone; the catalog
            // knows nothing of that.
            var seen = GroupLeader.PartsOf(_view!.Nodes, name, _services!, self, held: name);
            if (seen.Count > 0 && _view.Leads(name))
                return across.Leader.Checkpoint(group, name, request, seen, progress, storeAway: true);
            _logger!.CheckpointedAlone(name, e.Message);
            return null;
        }
        return others.Count == 0 ? null : across.Leader.Checkpoint(group, name, request, others, progress);
    }

    /// <inheritdoc/>
    public bool RestartAcrossNodes(GroupRuntime group, string failures)
    {
        string across = group.Config.Across;
        if (_store is not var (store, _) || _view is null || !_view.IsAcross(across))
            return false;
        string part = group.Config.Name;
        lock (_recovering)
        {
            if (!_recovering.Add(across))
                return true; // asked already: that restore covers this failure too
        }
        long failedAt = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        new Thread(() =>
        {
            try
            {
                string outcome = AskLeader(store, across, new PeerMessage { Op = Ops.Recover, Name = across, Part = part, Error = failures, FailedAtUnixMs = failedAt });
                _logger!.RestartAcrossNodes(part, across, outcome);
            }
            catch (Exception e)
            {
                _logger!.WatchFailed($"group {part}'s restart across nodes", e.ToString().ReplaceLineEndings(" | "));
            }
            finally
            {
                lock (_recovering)
                    _recovering.Remove(across);
            }
        })
        { IsBackground = true, Name = "amber-restart-across" }.Start();
        return true;
    }

    /// <summary>The group's leader (this node, or made so if none leads) asked to restore it, or to checkpoint it: what came of it, one line.</summary>
    private string AskLeader(EtcdClient store, string across, PeerMessage request)
    {
        try
        {
            long lease = _registration?.Lease ?? 0;
            string leader = lease != 0 ? GroupCatalog.Campaign(store, across, _identity.Name, lease, out _) : GroupCatalog.Leader(store, across);
            if (leader.Length == 0)
                return "no node leads it now (this one is not registered in the cluster's store)";
            var node = leader == _identity.Name ? Self : NodeRecord.Read(store, leader);
            if (node is null || !IPEndPoint.TryParse(node.Address, out var address))
                return $"its leader, node {leader}, is not live in the cluster's store";
            using var link = PeerLink.Connect(address, _identity, _peerTimeout);
            link.Greet();
            link.Send(request);
            var answer = NodeParts.Next(link);
            string did = request.Mode == "checkpoint" ? "checkpoint" : "restore";
            return answer.Op == Ops.Ok ? $"node {leader} did: {answer.Warnings.LastOrDefault()}" : $"node {leader} did not {did} it: {answer.Error}";
        }
        catch (Exception e) when (e is EtcdException or IOException)
        {
            return $"its leader could not be asked: {e.Message}";
        }
    }

    /// <summary>
    /// recover, asked of this node as the group's leader: the whole group back from its latest checkpoint
    /// across nodes (only the failing part for a group whose parts are independent), unless a restore of
    /// it was done since the part failed; or, with mode "checkpoint" (a part moved), a checkpoint across
    /// the nodes it runs on now. One at a time per group.
    /// </summary>
    private void Recover(PeerLink link, PeerMessage request)
    {
        if (Across() is not { } across)
        {
            link.Send(PeerMessage.Failure("this node knows no cluster's store"));
            return;
        }
        bool checkpoint = request.Mode == "checkpoint";
        var gate = _restores.GetOrAdd(request.Name, _ => new RestoreGate());
        lock (gate)
        {
            // A restore done since the part failed covers it (a checkpoint asked is always taken).
            if (!checkpoint && gate.DoneAtUnixMs > request.FailedAtUnixMs)
            {
                link.Send(new PeerMessage { Op = Ops.Ok, Warnings = ["restored already since"] });
                return;
            }
            ControlResponse response;
            try
            {
                var latest = GroupCatalog.Checkpoints(across.Store, request.Name).LastOrDefault();
                if (!across.Leader.Campaign(request.Name))
                    response = ControlResponse.Failure($"node {_identity.Name} does not lead group {request.Name}");
                else if (checkpoint)
                    response = across.Leader.Checkpoint(null, request.Name, new CheckpointRequest(request.Name, Stop: false, Full: false),
                        GroupLeader.PartsOf(GroupLeader.LiveNodes(across.Store, _identity.Name), request.Name, _services!, Self, held: null), progress: null, nodeLoss: latest?.NodeLoss ?? "");
                else if (latest is null)
                    response = ControlResponse.Failure($"group {request.Name} has no checkpoint across nodes");
                else
                {
                    _logger!.RecoveringAfterFailure(request.Name, link.Peer, request.Part, request.Error, latest.Id);
                    response = across.Leader.Restore(null, latest, GroupLeader.LiveNodes(across.Store, _identity.Name), progress: null, replace: true,
                        only: latest.NodeLoss == GroupConfig.LostOnly ? p => p.Host.Name == link.Peer && p.Local == request.Part : null);
                    if (response.Ok)
                        gate.DoneAtUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
                }
            }
            catch (EtcdException e)
            {
                response = ControlResponse.Failure($"the cluster's store is out of reach: {e.Message}");
            }
            link.Send(response.Ok ? new PeerMessage { Op = Ops.Ok, Warnings = [.. response.Stderr] } : PeerMessage.Failure(response.Error));
        }
    }

    /// <summary>When the group was last restored by a recover (Unix ms); locked while one runs.</summary>
    private sealed class RestoreGate
    {
        public long DoneAtUnixMs;
    }

    /// <inheritdoc/>
    public string? Removed(GroupConfig config)
    {
        string across = config.Across;
        if (_store is null || _view?.IsAcross(across) != true)
            return null;
        string outcome;
        if (_services!.Groups().FirstOrDefault(g => g.Config.Across == across) is { } other)
        {
            outcome = $"group {across} stays in the cluster's store: its part {other.Config.Name} runs on this node";
        }
        else
        {
            try
            {
                outcome = _view.Forget(across);
            }
            catch (EtcdException e)
            {
                try
                {
                    _view.ForgetLater(across);
                    outcome = $"group {across} is forgotten in the cluster's store once it is in reach again, if no node runs a part of it then (it is out of reach: {e.Message})";
                }
                catch (Exception kept) when (kept is IOException or UnauthorizedAccessException)
                {
                    outcome = $"warning: group {across} stays in the cluster's store, out of reach ({e.Message}), and could not be noted to be forgotten later ({kept.Message}): a group of that name made later takes its settings";
                }
            }
        }
        _logger!.GroupForgotten(config.Name, outcome);
        _registration?.Changed(); // (this node's record no longer lists it)
        return outcome;
    }

    /// <inheritdoc/>
    public ControlResponse? RestoreAcrossNodes(GroupRuntime group, RestoreRequest request, Requester who, Action<ProgressSample>? progress)
    {
        if (Across() is not { } across)
            return null;
        if (group.Config.PartOf.Length > 0)
            return ControlResponse.Failure($"group {group.Config.Name} is a part of group {group.Config.PartOf} that came to this node from a lost one: it is restored with that group (amber restore --group {group.Config.PartOf})");
        CatalogEntry? entry;
        List<NodeRecord> live;
        try
        {
            var catalog = GroupCatalog.Checkpoints(across.Store, group.Config.Name);
            entry = request.From.Length == 0 ? catalog.LastOrDefault() : catalog.FirstOrDefault(e => e.Id == request.From);
            if (entry is null || entry.Parts.All(p => p.Node == _identity.Name && p.Local.Length == 0))
                return null; // one of this node's checkpoints (or none across nodes): restored here alone
            live = GroupLeader.LiveNodes(across.Store, _identity.Name);
        }
        catch (EtcdException e)
        {
            return request.From.Length == 0 ? null
                : ControlResponse.Failure($"group {group.Config.Name}: the cluster's store, which knows the checkpoints across nodes, is out of reach: {e.Message}");
        }
        return across.Leader.Restore(group, entry, live, progress);
    }

    /// <summary>The store and this node as a group's leader, if the node knows a store.</summary>
    private (EtcdClient Store, GroupLeader Leader)? Across() =>
        _store is var (store, _) && _registration is not null
            ? (store, new GroupLeader(_services!, _identity, _listen.ToString(), store, _view!, _registration.Lease, _peerTimeout, _services!.Loggers.CreateLogger<GroupLeader>()))
            : null;

    private void AcceptAll()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket socket;
            try
            {
                socket = _listener!.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                return; // closed: the agent stops
            }
            new Thread(() => Serve(socket)) { IsBackground = true, Name = "amber-agent-peer" }.Start();
        }
    }

    /// <summary>One peer's connection: authenticated first, then its request. Whatever happens, the agent goes on.</summary>
    private void Serve(Socket socket)
    {
        string from = socket.RemoteEndPoint?.ToString() ?? "?";
        try
        {
            using var link = PeerLink.Accept(socket, _identity, _peerTimeout);
            try
            {
                Converse(link);
            }
            catch (IOException e)
            {
                _logger!.Refused(from, $"node {link.Peer}: {e.Message}");
            }
        }
        catch (IOException e)
        {
            _logger!.Refused(from, e.Message);
        }
        catch (Exception e)
        {
            // A peer's connection never takes the agent down with it.
            _logger!.PeerFailed(from, e.ToString().ReplaceLineEndings(" | "));
        }
    }

    private void Converse(PeerLink link)
    {
        var hello = link.Receive();
        if (hello.Op != Ops.Hello)
        {
            link.Send(PeerMessage.Failure($"'{hello.Op}' before hello"));
            return;
        }
        link.Send(new PeerMessage { Op = Ops.Hello, Version = PeerLink.ProtocolVersion });
        if (hello.Version != PeerLink.ProtocolVersion)
            return; // the source says so to its user
        var request = link.Receive();
        if (request.Op == Ops.Begin)
            new MigrationTarget(_services!, link, _identity.Name, _services!.Loggers.CreateLogger<MigrationTarget>(), _pageLinks, _peerTimeout,
                arrived: () => _registration?.Changed(), // the store lists it here at once
                placedHere: _store is var (store, _) ? (config, from, sentAs) => MovePlacement.PlacedHere(store, config, _identity.Name, from, sentAs) : null,
                partName: ArrivingPartName).Serve(request);
        else if (request.Op == Ops.Run)
            RunFor(link, request);
        else if (request.Op == Ops.Replica)
            Replicas.Receive(_services!, link, request);
        else if (request.Op == Ops.CheckpointPart)
        {
            _view?.Joined(request.Name);
            NodeParts.Checkpoint(_services!, link, request, _identity, _peerTimeout);
        }
        else if (request.Op == Ops.RestorePart)
        {
            _view?.Joined(request.Across.Length > 0 ? request.Across : request.Name);
            NodeParts.Restore(_services!, link, request);
            _registration?.Changed(); // the store lists what runs here now before the leader's next checkpoint asks
        }
        else if (request.Op == Ops.Recover)
            Recover(link, request);
        else if (request.Op == Ops.Store)
            link.Send(new PeerMessage { Op = Ops.Ok, RenewedAtUnixMs = _registration is { Lease: not 0 } r ? new DateTimeOffset(r.LastRenewed).ToUnixTimeMilliseconds() : 0 });
        else if (request.Op == Ops.Pages)
        {
            if (!_pageLinks.Serve(request.Name, link))
                link.Send(PeerMessage.Failure($"no migration of a group '{request.Name}' from node {link.Peer} waits for its pages here"));
        }
        else
            link.Send(PeerMessage.Failure($"unknown request '{request.Op}'"));
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        _stop.Cancel();
        _listener?.Dispose();
        _recovery?.Dispose();
        _fence?.Dispose();
        _registration?.Dispose(); // the lease ended: the node leaves the live ones at once
        if (_registration is null)
            _store?.Client.Dispose();
        _identity.Dispose();
        _stop.Dispose();
    }
}
