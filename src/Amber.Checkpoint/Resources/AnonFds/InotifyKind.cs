using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Proc;
using Google.Protobuf;

namespace Amber.Checkpoint.Resources.AnonFds;

/// <summary>
/// An inotify descriptor: its watches, each by the file's handle (name_to_handle_at), so that the
/// restore finds the very inode wherever it was moved since, or makes the watch on a deleted file
/// again on the file the restore makes. One with events not read yet is refused (they would be lost):
/// a passing state, the checkpoint is tried again once the program has had a moment to read them.
/// </summary>
public sealed class InotifyKind : IFileKind
{
    public IReadOnlyList<FdKind> Restores { get; } = [FdKind.FdInotify];

    public bool TryDump(OpenFd fd, FdImage image)
    {
        if (fd.AnonKind != "inotify")
            return false;
        string info = ProcFs.ReadFdInfoText(fd.Pid, fd.Fd);
        int queued = ProcessFiles.QueuedBytes(fd.Pid, fd.Fd);
        if (queued > 0)
            throw new UnsupportedResourceException(fd.Pid, $"fd {fd.Fd} (inotify)", $"an inotify descriptor with {queued} bytes of events not read yet") { Passing = true };
        image.Kind = FdKind.FdInotify;
        foreach (var w in AnonFdInfo.ParseInotify(info))
        {
            var (path, deleted) = FileHandles.Resolve(w.Device, w.HandleType, w.Handle)
                ?? throw new UnsupportedResourceException(fd.Pid, $"fd {fd.Fd} (inotify watch {w.Wd} on inode {w.Inode})", "an inotify watch on a file that cannot be opened by its handle");
            image.Inotify.Add(new InotifyWatch
            {
                Wd = w.Wd, Path = path, Mask = w.Mask, Inode = w.Inode, Device = w.Device, HandleType = w.HandleType,
                Handle = ByteString.CopyFrom(w.Handle), Deleted = deleted,
            });
        }
        return true;
    }

    /// <summary>
    /// Watches are added again in their order. A watch descriptor is the next free number, so numbers
    /// of watches removed since are skipped by adding and removing a watch until the saved one comes.
    /// Each goes on the file it watched (<see cref="WatchTarget"/>), named to the process through a
    /// /proc fd path (IN_DONT_FOLLOW would watch that link itself: it is left out).
    /// </summary>
    public void Restore(FdRestore restore, FdImage fd)
    {
        const int MaxSkip = 100000;
        const uint DontFollow = 0x02000000;
        var calls = restore.Calls;
        int created = calls.InotifyInit((int)fd.Flags);
        foreach (var watch in fd.Inotify.OrderBy(w => w.Wd))
        {
            var (path, held) = WatchTarget(restore, watch);
            using (held)
            {
                for (int tries = 0; ; tries++)
                {
                    int wd = calls.InotifyAddWatch(created, path, watch.Mask & ~DontFollow);
                    if (wd == watch.Wd)
                        break;
                    if (wd > watch.Wd || tries == MaxSkip)
                        throw new CheckpointException($"fd {fd.Fd}: inotify watch {watch.Wd} on {watch.Path} came back as {wd}");
                    calls.InotifyRemoveWatch(created, wd);
                }
            }
        }
        restore.Place(fd, created);
    }

    /// <summary>
    /// The file a watch was on: a deleted file the restore makes again; else the very inode, opened by
    /// amber through its file handle (wherever it was renamed or moved since; amber's fd, which the
    /// process, still root, reaches through /proc); else, on another machine or once the file is
    /// gone, what its path names now (<see cref="Amber.Checkpoint.Restore.ImageValidator"/> says so beforehand).
    /// </summary>
    private static (string Path, HeldFile? Held) WatchTarget(FdRestore restore, InotifyWatch watch)
    {
        if (watch.Deleted)
            return (restore.DeletedFiles.PathOf(watch.Inode), null);
        if (!watch.Handle.IsEmpty && FileHandles.Open(watch.Device, watch.HandleType, watch.Handle.Span) is { } held)
            return ($"/proc/{Environment.ProcessId}/fd/{held.Fd}", held);
        return (watch.Path, null);
    }
}
