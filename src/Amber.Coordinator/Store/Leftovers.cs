using Amber.Image;
using Amber.Kernel.Files;

namespace Amber.Coordinator.Store;

/// <summary>
/// What interrupted workers leave in a group's store: checkpoints being written (*.tmp-*) or merged
/// (*.merge-*) when the worker was killed. Each worker of a group holds the group's worker lock for
/// its whole life, so while that lock can be taken no live amber process is writing there; the
/// coordinator then removes them (at its start, and before each checkpoint of the group).
/// </summary>
public static class Leftovers
{
    /// <summary>Removes the store's leftovers if no worker of the group runs (it holds <paramref name="workerLock"/>); the names removed.</summary>
    public static List<string> Remove(GroupStore store, string workerLock)
    {
        var removed = new List<string>();
        using var held = ExclusiveLock.TryTake(workerLock);
        if (held is null || !Directory.Exists(store.Directory))
            return removed;
        uint self = Security.StateFiles.Self;
        foreach (var dir in Directory.GetDirectories(store.Directory).Where(d => CheckpointStore.IsBeingWritten(Path.GetFileName(d))))
        {
            if (RemoveOwnDirectory(dir, self))
                removed.Add(Path.GetFileName(dir));
        }
        return removed;
    }

    /// <summary>
    /// Removes a directory a worker made (ours, not a link), never anything else: a user's store is
    /// the user's to rename in, so the directory is opened first and emptied through that open
    /// handle (/proc/self/fd/N/...), whatever its name leads to meanwhile.
    /// </summary>
    private static bool RemoveOwnDirectory(string dir, uint self)
    {
        try
        {
            using var handle = FileOpener.OpenReadNoFollow(dir);
            string pinned = $"/proc/self/fd/{handle.DangerousGetHandle()}";
            if (!FileStat.TryGet(pinned, out var st) || !st.IsDirectory || st.Uid != self)
                return false;
            foreach (var entry in Directory.GetFileSystemEntries(pinned))
            {
                if (FileStat.TryGetNoFollow(entry, out var e) && e.IsDirectory)
                {
                    if (!RemoveOwnDirectory(entry, self))
                        return false;
                }
                else
                {
                    File.Delete(entry);
                }
            }
            Directory.Delete(dir);
            return true;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Kernel.KernelCallException)
        {
            return false; // a link, gone, or not empty: left as it is
        }
    }
}
