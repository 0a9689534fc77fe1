using Amber.Checkpoint.Memory;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// Brings back files that were deleted while open or mapped: each is written again under its old
/// name (or a temporary one beside it) with the saved owner, mode, size and contents, every fd and
/// mapping of it is opened from that name, and the name is then removed — so the process again
/// holds a file nobody else can open. A file several processes use is created by their common
/// ancestor, held in a slot and unlinked at once; they open it through /proc/self/fd.
/// </summary>
public sealed class DeletedFileRestorer(RemoteCalls calls, ProcessImage image, RestoreTree tree, Func<int, PageFileRef, PageFileReader> pagesOf)
{
    private readonly Dictionary<ulong, string> _paths = [];

    /// <summary>Where the process opens a deleted file from, while it is being restored.</summary>
    public string PathOf(ulong id) =>
        _paths.TryGetValue(id, out var path) ? path : tree.SlotPath(ObjectKind.Deleted, id);

    /// <summary>The files this process creates for the tree, each into its slot, their names removed at once.</summary>
    public void CreateInSlots()
    {
        foreach (var deleted in image.DeletedFiles.Where(d => d.InSlot))
        {
            string path = Create(deleted, out int fd);
            calls.Dup3(fd, tree.ObjectSlots[(ObjectKind.Deleted, deleted.Id)], closeOnExec: true);
            calls.Close(fd);
            calls.Unlink(path);
        }
    }

    /// <summary>The files of this process alone, named until <see cref="RemoveNames"/>.</summary>
    public void CreateOwn()
    {
        foreach (var deleted in image.DeletedFiles.Where(d => !d.InSlot))
        {
            _paths[deleted.Id] = Create(deleted, out int fd);
            calls.Close(fd);
        }
    }

    /// <summary>Removes the temporary names; never throws (a name left behind is reported).</summary>
    public void RemoveNames(List<string> warnings)
    {
        foreach (var path in _paths.Values)
        {
            try
            {
                calls.Unlink(path);
            }
            catch (Exception e)
            {
                warnings.Add($"could not remove {path}: {e.Message}");
            }
        }
    }

    private string Create(DeletedFile deleted, out int fd)
    {
        // Under its old name when that is free, so /proc/PID/fd shows "<old name> (deleted)" again.
        string dir = Path.GetDirectoryName(deleted.Path) is { Length: > 0 } d && Directory.Exists(d) ? d : Path.GetTempPath();
        string path = Directory.Exists(dir) && dir == Path.GetDirectoryName(deleted.Path) && !Path.Exists(deleted.Path)
            ? deleted.Path
            : Path.Combine(dir, $".amber-restore-{image.Pid}-{Guid.NewGuid():N}");
        fd = calls.OpenAt(path, RemoteCalls.OpenFlags.ReadWrite | RemoteCalls.OpenFlags.Create | RemoteCalls.OpenFlags.Exclusive | RemoteCalls.OpenFlags.CloseOnExec, (int)deleted.Mode);
        calls.ChangeOwner(fd, deleted.Uid, deleted.Gid);
        calls.Truncate(fd, (long)deleted.Size);
        using var file = RemoteFile.FromFd(image.Pid, fd);
        foreach (var run in deleted.Pages)
        {
            var data = new byte[run.Count * ImageFormat.PageSize];
            pagesOf(deleted.PagesOf, run.StoredIn).ReadRun(run, data);
            file.Write((long)run.Address, data.AsSpan(0, (int)Math.Min((ulong)data.Length, deleted.Size - run.Address)));
        }
        return path;
    }
}
