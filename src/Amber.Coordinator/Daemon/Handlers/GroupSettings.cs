using System.Globalization;
using Amber.Checkpoint.Resources.Isolation;
using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>
/// The settings amber run gives a group. A request may come from any local user, so they are checked
/// here again, whatever the CLI checked. A new group takes them (the defaults for those not given);
/// an existing one takes those that can change at any time (the schedule, the deadline, the merge
/// policy, retention, compression, restart on failure) and refuses a different store or storage, which its
/// checkpoints are bound to.
/// </summary>
public static class GroupSettings
{
    private const double ShortestInterval = 0.001, LongestInterval = 365 * 86400.0;

    /// <summary>Why the request's settings cannot be, or null.</summary>
    public static string? Problem(RunRequest request)
    {
        if (request.EverySeconds != 0 && !IsInterval(request.EverySeconds))
            return $"--every {request.EverySeconds.ToString(CultureInfo.InvariantCulture)} s is not an interval from 1 ms to 365 days";
        if (request.DeadlineSeconds != 0 && !IsInterval(request.DeadlineSeconds))
            return $"--deadline {request.DeadlineSeconds.ToString(CultureInfo.InvariantCulture)} s is not an interval from 1 ms to 365 days";
        if (request.MergeAfter < 0)
            return $"--merge-after {request.MergeAfter} is not a number of checkpoints";
        if (request.MergeAboveBytes < 0)
            return $"--merge-above {request.MergeAboveBytes} is not a size";
        if (request.KeepLast < 0)
            return $"--keep-last {request.KeepLast} is not a number of checkpoints";
        if (request.KeepForSeconds != 0 && !IsInterval(request.KeepForSeconds))
            return $"--keep-for {request.KeepForSeconds.ToString(CultureInfo.InvariantCulture)} s is not an interval from 1 ms to 365 days";
        if (request.Compress is not ("" or "none" or "zstd" or "lz4"))
            return $"unknown compression '{request.Compress}' (none, zstd, lz4)";
        if (request.Storage.Any(s => !Path.IsPathFullyQualified(s)) || (request.Store.Length > 0 && !Path.IsPathFullyQualified(request.Store)))
            return "--images and --storage must be full paths";
        if (request.Encrypt.Length > 0 && !Path.IsPathFullyQualified(request.Encrypt))
            return "--encrypt must be a full path";
        if (IsolationProblem(request.Isolate) is { } isolation)
            return isolation;
        if (request.Hostname.Length > 0 && !request.Isolate.Contains("uts"))
            return "--hostname needs --isolate uts (a host name of the group's own)";
        if (request.Hostname.Length > 0 && (System.Text.Encoding.UTF8.GetByteCount(request.Hostname) > 64 || request.Hostname.Any(char.IsControl)))
            return $"--hostname '{request.Hostname}' is not a host name (at most 64 bytes, no control characters)";
        if (request.Bind.Select(GroupMounts.BindProblem).FirstOrDefault(p => p is not null) is { } bind)
            return bind;
        if (request.Bind.Distinct().Count() != request.Bind.Count)
            return "--bind names a bind mount twice";
        return NetworkProblem(request);
    }

    /// <summary>Why --net, --address and --publish cannot be, or null.</summary>
    private static string? NetworkProblem(RunRequest request)
    {
        bool macvlan = GroupNetwork.MacvlanLower(request.Net) is not null;
        if (macvlan && GroupNetwork.MacvlanLower(request.Net) is var lower && !(NetworkRestorer.IsInterfaceName(lower!) && lower != "lo"))
            return $"--net {request.Net}: '{lower}' is not a host interface's name";
        if (request.Net is not ("" or "bridge") && !macvlan)
            return $"--net {request.Net}: unknown network (bridge, macvlan:IF)";
        if (request.Net.Length == 0 && (request.Address.Length > 0 || request.Publish.Count > 0))
            return "--address and --publish need --net bridge or macvlan:IF (an address of the group's own)";
        if (macvlan && request.Address.Length == 0)
            return $"--net {request.Net} needs --address: one of {request.Net[8..]}'s network (amber's pool is its bridge's)";
        if (macvlan && request.Publish.Count > 0)
            return $"--publish is for --net bridge: with --net {request.Net} the group's address is reachable on {request.Net[8..]}'s network itself";
        if (request.Address.Length > 0 && GroupNetwork.AddressProblem(request.Address, onBridge: !macvlan) is { } address)
            return address;
        if (request.Gateway.Length > 0 && !macvlan)
            return "--gateway is for --net macvlan:IF (on amber's bridge, the bridge is the group's gateway)";
        if (request.Gateway.Length > 0 && GroupNetwork.GatewayProblem(request.Gateway, request.Address) is { } gateway)
            return gateway;
        return request.Publish.Select(p => GroupNetwork.PublishProblem(p, request.Address)).FirstOrDefault(p => p is not null);
    }

    /// <summary>The namespaces a group may have of its own.</summary>
    public static readonly IReadOnlyList<string> IsolationKinds = ["pid", "uts", "ipc", "net", "mount"];

    /// <summary>Why an --isolate list cannot be, or null.</summary>
    public static string? IsolationProblem(IReadOnlyList<string> isolate)
    {
        foreach (string kind in isolate)
        {
            if (kind == "user")
                return "--isolate user: user namespaces are not supported (a group runs with the users it has on the host)";
            if (!IsolationKinds.Contains(kind))
                return $"--isolate: unknown namespace '{kind}' (pid, uts, ipc, net, mount)";
        }
        return isolate.Distinct().Count() == isolate.Count ? null : "--isolate names a namespace twice";
    }

    /// <summary>A new group's settings: those of the request, the configuration file's for the others, the built-in defaults last.</summary>
    public static GroupConfig ForNewGroup(RunRequest request, string store, Security.Requester owner, CoordinatorConfig? defaults = null) => new()
    {
        Name = request.Group, Owner = owner.Uid, OwnerGid = owner.Gid, OwnerGroups = [.. owner.Groups], OwnerCapabilities = owner.Capabilities,
        Store = store, Storage = StoragePaths(request),
        EverySeconds = request.EverySeconds > 0 ? request.EverySeconds : defaults?.EverySeconds ?? 0,
        SharedStorage = request.SharedStorage ?? false,
        RestartOnFailure = request.RestartOnFailure ?? defaults?.RestartOnFailure ?? false,
        NodeLoss = request.NodeLoss == GroupConfig.LostOnly ? GroupConfig.LostOnly : "",
        DeadlineSeconds = request.DeadlineSeconds > 0 ? request.DeadlineSeconds : defaults?.DeadlineSeconds ?? 5,
        MergeAfter = request.MergeAfter > 0 ? request.MergeAfter : defaults?.MergeAfter ?? 8,
        MergeAboveBytes = request.MergeAboveBytes > 0 ? request.MergeAboveBytes : defaults?.MergeAboveBytes ?? 0,
        Compress = request.Compress.Length > 0 ? request.Compress : defaults?.Compress ?? "none",
        KeepLast = request.KeepLast > 0 ? request.KeepLast : defaults?.KeepLast ?? 0,
        KeepForSeconds = request.KeepForSeconds > 0 ? request.KeepForSeconds : defaults?.KeepForSeconds ?? 0,
        CreatedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        EncryptKey = request.Encrypt,
        // An address of its own is in a network namespace of its own.
        Isolate = Isolation(request),
        Net = request.Net,
        Gateway = request.Gateway,
        Bridge = request.Net == "bridge" ? defaults?.Bridge ?? GroupNetwork.DefaultBridge : "",
        Publish = [.. request.Publish],
        Binds = [.. request.Bind],
        Hostname = request.Isolate.Contains("uts") ? request.Hostname.Length > 0 ? request.Hostname : request.Group : "",
    };

    /// <summary>
    /// The namespaces the request gives a group, in order; an address of its own (--net) is in a network
    /// namespace of its own, bind mounts (--bind) in a mount namespace of its own.
    /// </summary>
    private static List<string> Isolation(RunRequest request) =>
        [.. IsolationKinds.Where(k => request.Isolate.Contains(k) || (k == "net" && request.Net.Length > 0) || (k == "mount" && request.Bind.Count > 0))];

    /// <summary>Why an existing group cannot take the request's settings (a store or storage of its own), or null.</summary>
    public static string? Refusal(GroupConfig config, RunRequest request)
    {
        string how = $"leave it out, or end the group first: amber stop --group {config.Name} --remove (its checkpoints stay)";
        if (request.Store.Length > 0 && Path.TrimEndingDirectorySeparator(request.Store) != Path.TrimEndingDirectorySeparator(config.Store))
            return $"group {config.Name} exists with store {config.Store}, not --images {request.Store}; a group's store cannot change: {how}";
        var storage = StoragePaths(request);
        if (storage.Count > 0 && !storage.Order(StringComparer.Ordinal).SequenceEqual(config.Storage.Order(StringComparer.Ordinal)))
            return $"group {config.Name} exists with storage {(config.Storage.Count > 0 ? string.Join(", ", config.Storage) : "none")}, not --storage {string.Join(", ", storage)}; "
                + $"a group's storage cannot change: {how}";
        // A chain has one key: an incremental checkpoint keeps its pages in the earlier ones.
        if (request.Encrypt.Length > 0 && request.Encrypt != config.EncryptKey)
            return $"group {config.Name} exists {(config.EncryptKey.Length > 0 ? $"encrypted with the key file {config.EncryptKey}" : "without encryption")}, not --encrypt {request.Encrypt}; "
                + $"a group's key cannot change: {how}";
        // Its checkpoints make its namespaces again, and its programs share them.
        if (request.Isolate.Count > 0 && !Isolation(request).SequenceEqual(config.Isolate))
            return $"group {config.Name} exists with {(config.Isolate.Count > 0 ? $"--isolate {string.Join(",", config.Isolate)}" : "no namespaces of its own")}, not --isolate {string.Join(",", request.Isolate)}; "
                + $"a group's namespaces cannot change: {how}";
        if (request.Hostname.Length > 0 && request.Hostname != config.Hostname)
            return $"group {config.Name} exists with host name {config.Hostname}, not --hostname {request.Hostname}; its programs share one: {how}";
        if ((request.Net.Length > 0 && request.Net != config.Net) || (request.Address.Length > 0 && request.Address != config.Address)
            || (request.Publish.Count > 0 && !request.Publish.SequenceEqual(config.Publish)) || (request.Gateway.Length > 0 && request.Gateway != config.Gateway))
            return $"group {config.Name} exists with {(config.Net.Length > 0 ? $"address {config.Address}{(config.Publish.Count > 0 ? $", publishing {string.Join(", ", config.Publish)}" : "")}" : "no network of its own")}; "
                + $"its network cannot change: {how}";
        if (request.Bind.Count > 0 && !request.Bind.SequenceEqual(config.Binds))
            return $"group {config.Name} exists with {(config.Binds.Count > 0 ? $"--bind {string.Join(" --bind ", config.Binds)}" : "no bind mounts")}; its mounts cannot change: {how}";
        return null;
    }

    /// <summary>Takes the request's settings that differ from the group's; what changed, one line each.</summary>
    public static List<string> Apply(GroupConfig config, RunRequest request)
    {
        var changes = GroupPolicy.Of(config).With(request).ApplyTo(config);
        if (request.SharedStorage is bool shared && shared != config.SharedStorage)
        {
            changes.Add($"--shared-storage {(config.SharedStorage ? "yes" : "no")} -> {(shared ? "yes" : "no")}");
            config.SharedStorage = shared;
        }
        return changes;
    }

    private static bool IsInterval(double seconds) => seconds is >= ShortestInterval and <= LongestInterval;

    private static List<string> StoragePaths(RunRequest request) => [.. request.Storage.Select(Path.TrimEndingDirectorySeparator).Distinct()];
}
