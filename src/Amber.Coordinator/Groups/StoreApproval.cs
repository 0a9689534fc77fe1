using Amber.Checkpoint.Storage;
using Amber.Coordinator.Security;
using Amber.Coordinator.Store;
using Amber.Coordinator.Workers;
using Amber.Kernel.Files;
using Amber.Kernel.Processes;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Groups;

/// <summary>
/// The coordinator works on a user's group's store and storage as root, so they are approved when
/// the group is made (the user may write them, asked as the user) and confirmed before each
/// operation (still what was approved: the owner may rename and replace what is theirs).
/// </summary>
public sealed class StoreApproval(AmberHome home, ChildReaper reaper, ILogger logger)
{
    /// <summary>
    /// Why the storage a group declares cannot be: not a directory, another user's (the coordinator
    /// captures and rolls back what it names), nested, or the store itself.
    /// </summary>
    public static string? StorageProblem(IReadOnlyList<string> storage, string store, uint uid)
    {
        foreach (string dir in storage)
        {
            if (!FileStat.TryGetNoFollow(dir, out var st) || !st.IsDirectory)
                return $"storage {dir} is not a directory";
            if (uid != 0 && st.Uid != uid)
                return $"storage {dir} belongs to uid {st.Uid}; only its owner or root may make it a group's storage";
            if (storage.FirstOrDefault(other => StoragePaths.IsBelow(dir, other)) is { } outer)
                return $"storage {dir} is inside storage {outer}: declare one of them";
            if (store == dir || StoragePaths.IsBelow(dir, store))
                return $"storage {dir} would hold its own checkpoints ({store}): choose another --images";
        }
        return null;
    }

    /// <summary>
    /// For a user's new group: the user may write its store (made by the user if missing) and its
    /// storage, asked as that user. The default store is the coordinator's to make for it, unless one
    /// is left there by another user's group of that name.
    /// </summary>
    public string? AccessProblem(GroupConfig config)
    {
        if (config.Owner == 0)
            return null;
        bool ownStore = config.Store != home.DefaultStore(config.Name);
        if (!ownStore && FileStat.TryGetNoFollow(config.Store, out var left) && left.Uid != config.Owner)
            return $"the default store {config.Store} holds another user's checkpoints (uid {left.Uid}): choose another --images";
        if (AsOwner(config, ownStore ? config.Store : null, config.Storage) is { } denied)
            return $"{denied}: a group of uid {config.Owner} may use only a store and storage it may write";
        return null;
    }

    /// <summary>Which directory the store of a user's group is now: the one its owner was found allowed to write.</summary>
    public static void RememberStore(GroupConfig config)
    {
        if (config.Owner != 0 && FileStat.TryGet(config.Store, out var st))
            (config.StoreDevice, config.StoreInode) = (st.Device, st.Inode);
    }

    /// <summary>
    /// Before the coordinator works on a user's group's store or storage (as root): they are still what
    /// the owner was allowed. A storage directory must still be one of the owner's (not a link, not
    /// another's through a link along its path); a store that is not the directory approved any more
    /// (removed and made again, or replaced) must be writable by the owner again, asked as the owner
    /// (made again by the owner if gone). Null, or why nothing may be done.
    /// </summary>
    public string? Confirm(GroupRuntime group)
    {
        var config = group.Config;
        if (config.Owner == 0)
            return null;
        foreach (string dir in config.Storage)
        {
            if (!FileStat.TryGetNoFollow(dir, out var link) || link.IsSymlink || !FileStat.TryGet(dir, out var st) || !st.IsDirectory || st.Uid != config.Owner)
                return $"group {config.Name}: its storage {dir} is no longer a directory of uid {config.Owner}'s; nothing is done";
        }
        if (StoreUnchanged(config))
            return null;
        bool ownStore = config.Store != home.DefaultStore(config.Name);
        if (!ownStore)
            GroupRuntime.MakeDefaultStore(config.Store, config.Owner, config.OwnerGid);
        if (AsOwner(config, ownStore ? config.Store : null, ownStore ? [] : [config.Store]) is { } denied)
            return $"group {config.Name}: its store {config.Store} is not the directory it was when the group was made, and {denied}; nothing is done";
        RememberStore(config);
        group.Save();
        logger.StoreReplaced(config.Name, config.Store, config.Owner);
        return null;
    }

    /// <summary>Interrupted checkpoints and merges of the group's store, removed if no worker of the group runs (and the store is still the one approved).</summary>
    public void RemoveLeftovers(GroupRuntime group)
    {
        if (!StoreUnchanged(group.Config))
            return;
        var removed = Leftovers.Remove(group.Store, home.WorkerLock(group.Config.Name));
        if (removed.Count > 0)
            logger.LeftoversRemoved(group.Config.Name, string.Join(" ", removed));
    }

    /// <summary>The store is the directory approved for the group (any store of root's is).</summary>
    private static bool StoreUnchanged(GroupConfig config) =>
        config.Owner == 0 || FileStat.TryGet(config.Store, out var now) && now.IsDirectory && (now.Device, now.Inode) == (config.StoreDevice, config.StoreInode);

    /// <summary>Asks a helper that becomes the owner (see <see cref="UserAccess"/>): null, or why not.</summary>
    private string? AsOwner(GroupConfig config, string? create, IEnumerable<string> writable)
    {
        var report = Worker.Run(reaper, home.DaemonLog, UserAccess.Arguments(config.Owner, config.OwnerGid, create, writable));
        return report.Ok ? null : report.Error;
    }
}
