namespace Amber.Coordinator.Control;

/// <summary>
/// amber run: the group made if new (with these settings) or given those that may change, then
/// Command started in it, in WorkingDirectory with Environment (the caller's). A setting left at
/// its default (0, "", null) is not said.
/// </summary>
public sealed record RunRequest(string Group) : GroupRequest(Group)
{
    /// <summary>The operation's name on the control socket (<see cref="ControlRequest.Op"/>).</summary>
    public const string Op = "run";

    /// <summary>The program and its arguments, started in the group.</summary>
    public IReadOnlyList<string> Command { get; init; } = [];

    /// <summary>The directory <see cref="Command"/> starts in.</summary>
    public string WorkingDirectory { get; init; } = "";

    /// <summary>The environment <see cref="Command"/> starts with, as NAME=value.</summary>
    public IReadOnlyList<string> Environment { get; init; } = [];

    /// <summary>Where the group's checkpoints go (--images); empty: the default store.</summary>
    public string Store { get; init; } = "";

    /// <summary>A checkpoint every so many seconds (--every); 0: on demand only.</summary>
    public double EverySeconds { get; init; }

    /// <summary>Directories captured at each checkpoint's barrier and rolled back by a restore (--storage), absolute.</summary>
    public IReadOnlyList<string> Storage { get; init; } = [];

    /// <summary>Its storage is on a file system the nodes share, left in place by a migration (--shared-storage); null: not said.</summary>
    public bool? SharedStorage { get; init; }

    /// <summary>Restore the group from its latest checkpoint when a tree root fails (--restart-on-failure); null: not said.</summary>
    public bool? RestartOnFailure { get; init; }

    /// <summary>A group across nodes, when a node is lost (--node-loss): "rollback" or "lost-only"; "": not said.</summary>
    public string NodeLoss { get; init; } = "";

    /// <summary>How long registered programs get to prepare for a checkpoint (--deadline); 0: the default (5 s).</summary>
    public double DeadlineSeconds { get; init; }

    /// <summary>Fold the chain into a full checkpoint once it is this long (--merge-after); 0: the default (8).</summary>
    public int MergeAfter { get; init; }

    /// <summary>Fold it also once its incremental checkpoints hold more than this many bytes (--merge-above); 0: no limit.</summary>
    public long MergeAboveBytes { get; init; }

    /// <summary>Compression of the group's checkpoints (none, zstd, lz4; --compress); empty: not said.</summary>
    public string Compress { get; init; } = "";

    /// <summary>Retention: keep this many latest checkpoints (--keep-last); 0: not said.</summary>
    public int KeepLast { get; init; }

    /// <summary>Retention: keep the checkpoints of this many last seconds (--keep-for); 0: not said.</summary>
    public double KeepForSeconds { get; init; }

    /// <summary>The key file the group's checkpoints are encrypted with (a full path); only for a new group.</summary>
    public string Encrypt { get; init; } = "";

    /// <summary>The namespaces a new group has of its own (--isolate: pid, uts, ipc, net, mount); empty: not said.</summary>
    public IReadOnlyList<string> Isolate { get; init; } = [];

    /// <summary>The host name in a new group's own UTS namespace (--hostname); empty: the group's name.</summary>
    public string Hostname { get; init; } = "";

    /// <summary>A new group's network (--net): "bridge"; empty: not said.</summary>
    public string Net { get; init; } = "";

    /// <summary>A new group's address with its prefix length (--address); empty: from the coordinator's pool.</summary>
    public string Address { get; init; } = "";

    /// <summary>A new group's default route on a macvlan (--gateway): a router of IF's network; empty: none.</summary>
    public string Gateway { get; init; } = "";

    /// <summary>Ports a new group publishes to the host (--publish [HOSTIP:]HOSTPORT:PORT[/tcp|/udp]).</summary>
    public IReadOnlyList<string> Publish { get; init; } = [];

    /// <summary>Bind mounts in a new group's own mount namespace (--bind SRC:DST, root only).</summary>
    public IReadOnlyList<string> Bind { get; init; } = [];

    /// <summary>The node of the cluster to run it on (amber run --node); empty: this one.</summary>
    public string Node { get; init; } = "";

    /// <inheritdoc/>
    public override ControlRequest ToWire() => new()
    {
        Op = Op, Group = Group, Command = [.. Command], WorkingDirectory = WorkingDirectory, Environment = [.. Environment],
        Store = Store, EverySeconds = EverySeconds, Storage = [.. Storage], SharedStorage = SharedStorage, RestartOnFailure = RestartOnFailure,
        DeadlineSeconds = DeadlineSeconds, MergeAfter = MergeAfter, MergeAboveBytes = MergeAboveBytes, Compress = Compress,
        KeepLast = KeepLast, KeepForSeconds = KeepForSeconds,
        Encrypt = Encrypt.Length > 0 ? Encrypt : null,
        Isolate = Isolate.Count > 0 ? [.. Isolate] : null,
        Hostname = Hostname.Length > 0 ? Hostname : null,
        Net = Net.Length > 0 ? Net : null,
        Address = Address.Length > 0 ? Address : null,
        Gateway = Gateway.Length > 0 ? Gateway : null,
        Publish = Publish.Count > 0 ? [.. Publish] : null,
        Bind = Bind.Count > 0 ? [.. Bind] : null,
        Node = Node.Length > 0 ? Node : null,
        NodeLoss = NodeLoss.Length > 0 ? NodeLoss : null,
    };

    internal static RunRequest From(ControlRequest wire) => new(wire.Group)
    {
        Command = wire.Command, WorkingDirectory = wire.WorkingDirectory, Environment = wire.Environment,
        Store = wire.Store, EverySeconds = wire.EverySeconds, Storage = wire.Storage, SharedStorage = wire.SharedStorage, RestartOnFailure = wire.RestartOnFailure,
        DeadlineSeconds = wire.DeadlineSeconds, MergeAfter = wire.MergeAfter, MergeAboveBytes = wire.MergeAboveBytes, Compress = wire.Compress,
        KeepLast = wire.KeepLast, KeepForSeconds = wire.KeepForSeconds,
        Encrypt = wire.Encrypt ?? "",
        Isolate = wire.Isolate ?? [],
        Hostname = wire.Hostname ?? "",
        Net = wire.Net ?? "",
        Address = wire.Address ?? "",
        Gateway = wire.Gateway ?? "",
        Publish = wire.Publish ?? [],
        Bind = wire.Bind ?? [],
        Node = wire.Node ?? "",
        NodeLoss = wire.NodeLoss ?? "",
    };
}
