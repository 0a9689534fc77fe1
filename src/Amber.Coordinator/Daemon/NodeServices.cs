using Amber.Coordinator.Control;
using Amber.Coordinator.Daemon.Handlers;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;
using Amber.Coordinator.Store;
using Amber.Coordinator.Workers;
using Amber.Image;
using Amber.Kernel;
using Amber.Kernel.Files;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Daemon;

/// <summary>
/// What the coordinator lends its node agent (<see cref="INodeAgent"/>): its groups, and the same
/// operations requests do, for groups that leave this node or arrive on it. Every operation on a
/// group is to be done holding its Busy (<see cref="WhileBusy{T}"/>), as requests are.
/// </summary>
public sealed class NodeServices
{
    private readonly GroupSet _groups;
    private readonly OperationHandlers _handlers;

    internal NodeServices(AmberHome home, GroupSet groups, OperationHandlers handlers, ILoggerFactory loggers)
    {
        Home = home;
        _groups = groups;
        _handlers = handlers;
        Loggers = loggers;
    }

    public AmberHome Home { get; }

    /// <summary>What the control socket does with a request (set by the coordinator once it has its dispatcher).</summary>
    internal Func<ControlRequest, Requester, ControlResponse>? Requests { get; set; }

    /// <summary>A request of another node's, on behalf of <paramref name="who"/> there, handled as the control socket handles one.</summary>
    public ControlResponse Handle(ControlRequest request, Requester who) =>
        Requests?.Invoke(request, who) ?? ControlResponse.Failure("the coordinator does not take requests yet");

    public ILoggerFactory Loggers { get; }

    public GroupRuntime? Find(string name) => _groups.Find(name);

    /// <summary>The node's groups now.</summary>
    public IReadOnlyList<GroupRuntime> Groups() => _groups.All();

    /// <summary>Runs <paramref name="work"/> holding the group's Busy, waiting for an operation under way.</summary>
    public T WhileBusy<T>(GroupRuntime group, Func<T> work)
    {
        group.Busy.Wait();
        try
        {
            return work();
        }
        finally
        {
            // A group forgotten meanwhile is gone, its Busy with it.
            if (_groups.Find(group.Config.Name) == group)
            {
                group.RefreshTable();
                group.Busy.Release();
            }
        }
    }

    /// <summary>A checkpoint of the running group, incremental after its latest unless <paramref name="full"/>; it runs on, its writes tracked.</summary>
    /// <param name="storage">Its storage captured too (false: left in place, shared with the node it moves to).</param>
    /// <param name="barrier">The checkpoint is a node's part of one across nodes, held at its barriers.</param>
    public ControlResponse Checkpoint(GroupRuntime group, bool full, Action<ProgressSample>? progress = null, bool storage = true, PartBarrier? barrier = null) =>
        _handlers.Checkpoint.Checkpoint(group, stop: false, full, progress, storage: storage, barrier: barrier);

    /// <summary>
    /// The last checkpoint of a move: the group frozen and saved; then, asked with the checkpoint (whole,
    /// sealed where it is being made durable: it is committed after the answer, before any process
    /// ends), <paramref name="handOver"/> says whether it ends (null) or runs on here (why not):
    /// <see cref="ControlResponse.Ended"/> tells which happened.
    /// </summary>
    /// <param name="ended">Called once the processes were sent SIGKILL after a go (none runs again), while the worker collects them and reports.</param>
    /// <param name="full">A full checkpoint, not an incremental one after the group's latest.</param>
    public ControlResponse CheckpointAndHandOver(GroupRuntime group, bool full, Func<SealedCheckpoint, string?> handOver, Action? ended = null, Action<ProgressSample>? progress = null,
        bool storage = true) =>
        _handlers.Checkpoint.Checkpoint(group, stop: true, full, progress, handOver, ended, storage);

    /// <summary>
    /// A group arriving from another node, made here with no process: the sender's settings, but this
    /// node's default store and host link. Null, and why, if it cannot be (a group of that name exists
    /// here, its address is another group's, its storage is not its owner's).
    /// </summary>
    /// <param name="key">
    /// An encrypted group's key, which came with it: kept in the group's state directory (a file of the
    /// group's owner, mode 0600) for its checkpoints here, and deleted with them if it leaves again.
    /// </param>
    public GroupRuntime? Receive(GroupConfig sent, byte[]? key, out string? problem)
    {
        problem = null;
        if (sent.EncryptKey.Length > 0 && key is not { Length: ImageKey.Length })
        {
            problem = $"group {sent.Name}'s checkpoints are encrypted, and its key did not come with it";
            return null;
        }
        if (!AmberHome.IsValidGroupName(sent.Name))
        {
            problem = $"'{sent.Name}' is not a group name ({AmberHome.GroupNameRule})";
            return null;
        }
        if (_groups.Find(sent.Name) is not null)
        {
            problem = $"this node has a group {sent.Name} already";
            return null;
        }
        var config = Arriving(sent);
        if (config.Address.Length > 0 && _groups.All().FirstOrDefault(g => g.Config.Address.Split('/')[0] == config.Address.Split('/')[0]) is { } other)
        {
            problem = $"the group's address {config.Address} is group {other.Config.Name}'s on this node";
            return null;
        }
        if (Directory.Exists(config.Store) && Directory.EnumerateFileSystemEntries(config.Store).Any())
        {
            problem = $"this node's store for group {config.Name}, {config.Store}, is not empty (left by an earlier group of that name?)";
            return null;
        }
        if ((problem = _handlers.Approval.AccessProblem(config)) is not null)
            return null;
        // Only an encrypted group's key is kept (a key sent with any other is not its).
        bool encrypted = sent.EncryptKey.Length > 0;
        if (encrypted)
            config.EncryptKey = ArrivedKey(config.Name);
        GroupRuntime? made = null;
        var group = _groups.GetOrAdd(config.Name, () => made = GroupRuntime.Create(Home, config, _handlers.Attach.ForRegistration, Loggers.CreateLogger<Registrations>()));
        if (group != made)
        {
            problem = $"this node has a group {sent.Name} already";
            return null;
        }
        if (encrypted && (problem = KeepKey(config, key!)) is not null)
        {
            Forget(group);
            return null;
        }
        StoreApproval.RememberStore(config);
        group.Save();
        return group;
    }

    /// <summary>What of a group's settings comes with it from another node: all that is the group's, nothing that is the node's.</summary>
    private GroupConfig Arriving(GroupConfig sent) => new()
    {
        Name = sent.Name, Owner = sent.Owner, OwnerGid = sent.OwnerGid, OwnerGroups = [.. sent.OwnerGroups], OwnerCapabilities = sent.OwnerCapabilities,
        Store = Home.DefaultStore(sent.Name), Storage = [.. sent.Storage], SharedStorage = sent.SharedStorage, EverySeconds = sent.EverySeconds, RestartOnFailure = sent.RestartOnFailure, NodeLoss = sent.NodeLoss, PartOf = sent.PartOf,
        MergeAfter = sent.MergeAfter, MergeAboveBytes = sent.MergeAboveBytes, KeepLast = sent.KeepLast, KeepForSeconds = sent.KeepForSeconds,
        Compress = sent.Compress, DeadlineSeconds = sent.DeadlineSeconds, Isolate = [.. sent.Isolate], Hostname = sent.Hostname,
        Net = sent.Net, Address = sent.Address, Gateway = sent.Gateway, Bridge = sent.Bridge,
        HostLink = sent.Net == "bridge" ? GroupNetwork.HostLink(Home.StateDirectory, sent.Name) : "",
        Publish = [.. sent.Publish], Binds = [.. sent.Binds], Restarts = sent.Restarts, CreatedUnixMs = sent.CreatedUnixMs,
        Arriving = true,
    };

    /// <summary>Where a group that came from another node keeps the key that came with it.</summary>
    private string ArrivedKey(string group) => Path.Combine(Home.GroupDirectory(group), "key");

    /// <summary>The key that came with a group written where its settings say, its owner's, 0600; why not, or null.</summary>
    private static string? KeepKey(GroupConfig config, byte[] key)
    {
        try
        {
            if (File.Exists(config.EncryptKey))
                File.Delete(config.EncryptKey); // left by a group of that name that never fully arrived
            ImageKey.Save(config.EncryptKey, key);
            PathAttributes.SetOwnerAndMode(config.EncryptKey, config.Owner, config.OwnerGid, 0b110_000_000);
            return null;
        }
        catch (Exception e) when (e is ImageStoreException or IOException or UnauthorizedAccessException or KernelCallException)
        {
            return $"the key of group {config.Name} cannot be kept at {config.EncryptKey}: {e.Message}";
        }
    }

    /// <summary>Why <paramref name="group"/> cannot leave this node (to another node or to a stream), or null if it can.</summary>
    /// <param name="withKey">It goes to another node's agent, over mutual TLS, its key with it; not to a stream, which cannot carry the key.</param>
    public static string? CannotMove(GroupRuntime group, bool withKey)
    {
        string name = group.Config.Name;
        if (group.Config.EncryptKey.Length > 0 && !withKey)
            return $"group {name}'s checkpoints are encrypted, and a stream does not carry its key: migrate it to another node's agent (amber migrate --to ADDR:PORT), which gets the key over the cluster's TLS";
        if (group.LiveProcesses().Count == 0)
            return $"group {name} has no running process to migrate";
        return null;
    }

    /// <summary>A group that arrived (<see cref="Receive"/>) is this node's now, whatever happens to this coordinator.</summary>
    public static void Arrived(GroupRuntime group)
    {
        group.Config.Arriving = false;
        group.Save();
    }

    /// <summary>
    /// A restore started before the checkpoint it restores is known (a migration's destination, before
    /// the last round): the worker starts and gets ready now, and restores the checkpoint
    /// <paramref name="later"/> gives once it returns (null: none, and the restore fails). Otherwise as
    /// <see cref="Restore"/>, lazy; with <paramref name="pagesLater"/>, that checkpoint's page data is still
    /// arriving, from the arrivals given with it.
    /// </summary>
    public ControlResponse RestoreAhead(GroupRuntime group, Func<(StoredCheckpoint Checkpoint, IPageArrivals? Pages)?> later, Func<string?> handOver, Action? released = null,
        bool pagesLater = false)
    {
        var arrivals = pagesLater ? new ForwardedArrivals() : null;
        string restored = "";
        return Restored(group, () => _handlers.Restore.RestoreFrom(group, HandOver.Later, "", group.Owner, null, handOver, released, lazy: true, pagesFrom: arrivals, later: () =>
        {
            if (later() is not { } next)
                return null;
            if (arrivals is not null)
                arrivals.Forward(next.Pages ?? throw new InvalidOperationException("a restore ahead that expects arriving pages was given none"));
            restored = next.Checkpoint.Id;
            return (next.Checkpoint.Path, next.Checkpoint.Id);
        }), () => restored);
    }

    /// <summary>A restore of the group once its store is confirmed its owner's; the checkpoint it restored (<paramref name="from"/>, asked after) becomes its latest.</summary>
    private ControlResponse Restored(GroupRuntime group, Func<ControlResponse> restore, Func<string> from)
    {
        if (_handlers.Approval.Confirm(group) is { } changed)
            return ControlResponse.Failure(changed);
        var response = restore();
        if (response.Ok)
            group.Config.LastCheckpoint = from();
        group.Save();
        return response;
    }

    /// <summary>
    /// The group back from <paramref name="checkpoint"/>, for its owner; once every process is made,
    /// <paramref name="handOver"/> says whether they run (null) or are killed (why not), and
    /// <paramref name="released"/> is called as soon as they run. Lazy, they run before their memory
    /// is in (amber restore --lazy): the call returns once it is. With <paramref name="pagesFrom"/>, the
    /// checkpoint's page data is still arriving, and every read of it waits for its bytes.
    /// </summary>
    public ControlResponse Restore(GroupRuntime group, StoredCheckpoint checkpoint, Func<string?> handOver, Action? released = null, bool lazy = false,
        Action<ProgressSample>? progress = null, IPageArrivals? pagesFrom = null)
        => Restored(group, () => _handlers.Restore.RestoreFrom(group, checkpoint.Path, checkpoint.Id, group.Owner, progress, handOver, released, lazy, pagesFrom), () => checkpoint.Id);

    /// <summary>
    /// A group that left this node, or never fully arrived: whatever of it runs is ended, it is forgotten
    /// (settings, table, cgroup, published ports), and its checkpoints are deleted (the other node has
    /// them). Returns what could not be done, one line each.
    /// </summary>
    public List<string> Forget(GroupRuntime group)
    {
        var response = _handlers.Remove.Handle(group, new RemoveRequest(group.Config.Name), group.Owner, null);
        var problems = response.Stderr.Where(l => l.StartsWith("warning: ", StringComparison.Ordinal)).ToList();
        try
        {
            foreach (var entry in group.Store.Scan().Entries)
                CheckpointStore.Delete(entry.Path);
            // What a killed worker left (only amber's own directories: a user's store may hold the user's).
            Leftovers.Remove(group.Store, Home.WorkerLock(group.Config.Name));
            if (Directory.Exists(group.Store.Directory) && !Directory.EnumerateFileSystemEntries(group.Store.Directory).Any())
                Directory.Delete(group.Store.Directory);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ImageStoreException)
        {
            problems.Add($"the checkpoints of group {group.Config.Name} in {group.Store.Directory} could not all be deleted: {e.Message}");
        }
        // A key that came with the group goes with its checkpoints (a key of the user's own, which it
        // had on the node it was made on, is never touched).
        try
        {
            if (group.Config.EncryptKey == ArrivedKey(group.Config.Name))
                File.Delete(group.Config.EncryptKey);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            problems.Add($"the key of group {group.Config.Name} at {group.Config.EncryptKey} could not be deleted: {e.Message}");
        }
        return problems;
    }
}
