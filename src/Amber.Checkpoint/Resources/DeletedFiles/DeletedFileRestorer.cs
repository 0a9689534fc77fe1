using Amber.Checkpoint.Resources.Memory;
using Amber.Checkpoint.Restore;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Resources.DeletedFiles;

/// <summary>
/// Brings back files that were deleted while open or mapped: each is written again under its old
/// name (or a temporary one beside it) with the saved owner, mode, size and contents, every fd and
/// mapping of it is opened from that name, and the name is then removed — so the process again
/// holds a file nobody else can open. A file several processes use is created by their common
/// ancestor, held in a slot and unlinked at once; they open it through /proc/self/fd. A file made
/// with O_TMPFILE (no name ever, O_TMPFILE in its open file's flags) is made that way again.
/// </summary>
public sealed class DeletedFileRestorer(RemoteCalls calls, ProcessImage image, RestoreTree tree, Func<int, PageFileRef, PageFileReader> pagesOf, int floor)
{
    private readonly Dictionary<ulong, (string Path, DeletedFile File)> _named = [];
    /// <summary>Files made with O_TMPFILE, which never had a name: made so again, held by fd until their fd is restored.</summary>
    private readonly Dictionary<ulong, (int Fd, FdImage Opener)> _unnamed = [];

    /// <summary>Where the process opens a deleted file from, while it is being restored.</summary>
    public string PathOf(ulong id) =>
        _unnamed.TryGetValue(id, out var held) ? $"/proc/self/fd/{held.Fd}"
        : _named.TryGetValue(id, out var named) ? named.Path
        : tree.SlotPath(ObjectKind.Deleted, id);

    /// <summary>
    /// The open file an O_TMPFILE file was made through (its flags show O_TMPFILE for good), for the
    /// fd that had it: that very one, made again by open(dir, O_TMPFILE), at its offset. -1 for any other fd.
    /// </summary>
    public int TakeUnnamed(FdImage fd)
    {
        if (fd.Kind != FdKind.FdDeletedFile || !_unnamed.TryGetValue(fd.DeletedFile, out var held) || held.Opener != fd)
            return -1;
        _unnamed.Remove(fd.DeletedFile);
        if (fd.Offset != 0)
            calls.Seek(held.Fd, fd.Offset);
        return held.Fd;
    }

    /// <summary>The files this process creates for the tree, each into its slot, their names removed at once.</summary>
    public void CreateInSlots()
    {
        foreach (var deleted in image.DeletedFiles.Where(d => d.InSlot))
        {
            string path = Create(deleted, out int fd);
            calls.Dup3(fd, tree.ObjectSlots[(ObjectKind.Deleted, deleted.Id)], closeOnExec: true);
            calls.Close(fd);
            RemoveName(deleted, path);
        }
    }

    /// <summary>The files of this process alone, named until <see cref="RemoveNames"/> (or never named: O_TMPFILE).</summary>
    public void CreateOwn()
    {
        foreach (var deleted in image.DeletedFiles.Where(d => !d.InSlot))
        {
            var opener = image.Fds.FirstOrDefault(f => f.Kind == FdKind.FdDeletedFile && f.DeletedFile == deleted.Id
                && (f.Flags & OpenFlags.TmpFile) == OpenFlags.TmpFile && !f.HasSharesDescriptionWith && f.SharedFile == 0);
            if (opener is not null && CreateUnnamed(deleted, opener) is int held)
            {
                _unnamed[deleted.Id] = (held, opener);
                continue;
            }
            _named[deleted.Id] = (Create(deleted, out int fd), deleted);
            calls.Close(fd);
        }
    }

    /// <summary>Removes the temporary names; never throws (a name left behind is reported).</summary>
    public void RemoveNames(List<string> warnings)
    {
        foreach (var (fd, _) in _unnamed.Values)
            calls.Close(fd); // mapped only, or its fd was not the one that made it
        _unnamed.Clear();
        foreach (var (path, deleted) in _named.Values)
        {
            try
            {
                RemoveName(deleted, path);
            }
            catch (Exception e)
            {
                warnings.Add($"could not remove {path}: {e.Message}");
            }
        }
    }

    /// <summary>open(dir, O_TMPFILE) with the flags the file was made with, filled; null where the directory no longer takes it.</summary>
    private int? CreateUnnamed(DeletedFile deleted, FdImage opener)
    {
        string? dir = Path.GetDirectoryName(deleted.Path);
        if (dir is not { Length: > 0 } || !Directory.Exists(dir))
            return null;
        int flags = (int)opener.Flags & ~OpenFlags.CreationOnly;
        int fd;
        try
        {
            fd = calls.OpenAt(dir, flags | OpenFlags.CloseOnExec, (int)deleted.Mode);
        }
        catch (Kernel.KernelCallException)
        {
            return null; // a file system without O_TMPFILE now: made under a name, as a deleted file is
        }
        int held = calls.DupAbove(fd, floor);
        calls.Close(fd);
        Fill(deleted, held);
        return held;
    }

    private string Create(DeletedFile deleted, out int fd)
    {
        // Under its old name when that is free, so /proc/PID/fd shows "<old name> (deleted)" again.
        string dir = Path.GetDirectoryName(deleted.Path) is { Length: > 0 } d && Directory.Exists(d) ? d : Path.GetTempPath();
        string path = Directory.Exists(dir) && dir == Path.GetDirectoryName(deleted.Path) && !Path.Exists(deleted.Path)
            ? deleted.Path
            : Path.Combine(dir, $".amber-restore-{image.Pid}-{Guid.NewGuid():N}");
        if (deleted.Directory)
        {
            // Empty, as a removed directory is: made, held open, its name removed like a file's.
            calls.MakeDirectory(path, 0700);
            fd = calls.OpenAt(path, OpenFlags.ReadOnly | OpenFlags.Directory | OpenFlags.CloseOnExec);
            calls.ChangeOwner(fd, deleted.Uid, deleted.Gid);
            calls.ChangeMode(fd, deleted.Mode);
            return path;
        }
        fd = calls.OpenAt(path, OpenFlags.ReadWrite | OpenFlags.Create | OpenFlags.Exclusive | OpenFlags.CloseOnExec, (int)deleted.Mode);
        Fill(deleted, fd);
        return path;
    }

    private void RemoveName(DeletedFile deleted, string path)
    {
        if (deleted.Directory)
            calls.RemoveDirectory(path);
        else
            calls.Unlink(path);
    }

    /// <summary>Owner, size and contents of a file just made for <paramref name="deleted"/>.</summary>
    private void Fill(DeletedFile deleted, int fd)
    {
        calls.ChangeOwner(fd, deleted.Uid, deleted.Gid);
        calls.ChangeMode(fd, deleted.Mode); // the umask took from it at creation
        calls.Truncate(fd, (long)deleted.Size);
        using var file = RemoteFile.FromFd(calls.Memory.Pid, fd);
        foreach (var run in deleted.Pages)
        {
            var data = new byte[run.Count * ImageFormat.PageSize];
            pagesOf(deleted.PagesOf, run.StoredIn).ReadRun(run, data);
            file.Write((long)run.Address, data.AsSpan(0, (int)Math.Min((ulong)data.Length, deleted.Size - run.Address)));
        }
    }
}
