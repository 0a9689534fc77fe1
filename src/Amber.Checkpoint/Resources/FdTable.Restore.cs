using Amber.Checkpoint.Resources.AnonFds;
using Amber.Image.Schema;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Resources;

public static partial class FdTable
{
    /// <summary>The lowest fd number above every saved fd and every inherited slot: temporaries live from here.</summary>
    public static int Floor(ProcessImage image, int inheritCount)
    {
        int maxFd = image.Fds.Count == 0 ? 2 : Math.Max(2, image.Fds.Max(f => f.Fd));
        return Math.Max(maxFd, 2 + inheritCount) + 1;
    }

    /// <summary>
    /// Puts back the fd table inside the new process. On entry it holds amber's stdio at 0-2 and the
    /// inherited fds at 3..3+k-1 (see <see cref="Amber.Checkpoint.Restore.HuskProcess"/>). Those are first moved above
    /// every saved fd number, the low range is cleared, what the fds are made from is made there
    /// (<see cref="IFileKind.Prepare"/>), the saved fds are opened in ascending order (so the
    /// temporary fd a call returns never collides with a saved number still to come), then the
    /// inherited ones are duplicated into place and every temporary closed.
    /// </summary>
    public static void Restore(FdRestore restore, IReadOnlyList<(int Fd, int Source)> inherits)
    {
        var (calls, image) = (restore.Calls, restore.Image);
        var inherited = new Dictionary<int, int>();
        for (int i = 0; i < inherits.Count; i++)
            inherited[inherits[i].Fd] = restore.Hold(calls.DupAbove(3 + i, restore.Floor));
        calls.CloseRange(0, (uint)(restore.Floor - 1));
        foreach (var kind in FileKinds.All)
            kind.Prepare(restore);

        // epoll fds last: what they watch must exist first, an epoll set it watches too.
        var ordered = image.Fds.OrderBy(f => EpollKind.Depth(image, f.HasSharesDescriptionWith ? f.SharesDescriptionWith : f.Fd)).ThenBy(f => f.Fd);
        foreach (var fd in ordered)
        {
            if (IsDeferred(restore, fd, inherited))
            {
                restore.Deferred.Add(fd);
                continue;
            }
            // Most fds of a large program are files opened by path (a .NET runtime: ~200), each
            // opened at its own number in turn: queued together, not a stop of the process each.
            bool own = !inherited.ContainsKey(fd.Fd) && !fd.HasSharesDescriptionWith && fd.SharedFile == 0;
            if (own && FileKinds.For(fd) is Files.PathFileKind)
            {
                Files.PathFileKind.Open(restore.Batch, restore, fd);
                continue;
            }
            restore.Batch.Flush();
            if (inherited.TryGetValue(fd.Fd, out int source))
                calls.Dup3(source, fd.Fd, fd.CloseOnExec);
            else if (fd.HasSharesDescriptionWith)
                calls.Dup3(fd.SharesDescriptionWith, fd.Fd, fd.CloseOnExec);
            else if (fd.SharedFile != 0) // opened once, by the common ancestor of every process that shares it
                calls.Dup3(restore.Tree.FileSlots[fd.SharedFile], fd.Fd, fd.CloseOnExec);
            else
                FileKinds.For(fd).Restore(restore, fd);
        }
        restore.Batch.Flush();
        restore.CloseTemporaries();
        foreach (var (target, _) in inherits.Where(i => image.Fds.All(f => f.Fd != i.Fd)))
            restore.Warnings.Add($"--inherit-fd {target}: the process had no fd {target}; ignored");
    }

    /// <summary>
    /// An fd on a file in /proc of a process or thread of the tree not made yet (a child's, a zombie's,
    /// one of its own threads', a process of another tree's), or a copy of one: opened by
    /// <see cref="OpenDeferred"/> once every process is, its number left free until then.
    /// </summary>
    private static bool IsDeferred(FdRestore restore, FdImage fd, Dictionary<int, int> inherited)
    {
        if (inherited.ContainsKey(fd.Fd) || fd.SharedFile != 0)
            return false;
        if (fd.HasSharesDescriptionWith)
            return restore.Deferred.Any(d => d.Fd == fd.SharesDescriptionWith);
        return fd.Kind is FdKind.FdRegular or FdKind.FdDirectory && !restore.Tree.ProcFileReady(fd.Path);
    }

    /// <summary>
    /// Opens the fds <see cref="Restore"/> left for later (files in /proc of processes made after this
    /// one), now that every process and thread of the tree exists, each at its saved number.
    /// </summary>
    public static void OpenDeferred(RemoteCalls calls, IReadOnlyList<FdImage> deferred)
    {
        foreach (var fd in deferred)
        {
            if (fd.HasSharesDescriptionWith)
            {
                calls.Dup3(fd.SharesDescriptionWith, fd.Fd, fd.CloseOnExec);
                continue;
            }
            int created = Files.PathFileKind.Open(calls, fd, fd.Path);
            if (created != fd.Fd)
            {
                calls.Dup3(created, fd.Fd, fd.CloseOnExec);
                calls.Close(created);
            }
            else if (!fd.CloseOnExec)
            {
                calls.SetCloseOnExec(fd.Fd, false);
            }
        }
    }
}
