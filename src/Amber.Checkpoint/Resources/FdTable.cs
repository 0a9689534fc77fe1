using Amber.Checkpoint.Resources.AnonFds;
using Amber.Checkpoint.Resources.Locks;
using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources;

/// <summary>
/// A process's fd table: every open fd saved by the kind that claims it (<see cref="FileKinds"/>),
/// with its number, close-on-exec flag and the fds it shares an open file with; anything no kind
/// claims is refused with the fd and its kind named. The restore half is in FdTable.Restore.cs.
/// </summary>
public static partial class FdTable
{
    private const uint CloseOnExecFlag = OpenFlags.CloseOnExec; // as fdinfo flags show it

    public static void Dump(int pid, ProcessImage image)
    {
        var fds = new List<FdImage>();
        var locks = new List<(int, FdLock)>();
        foreach (int fd in ProcFs.ListFds(pid))
        {
            var info = ProcFs.ReadFdInfo(pid, fd);
            fds.Add(Describe(pid, fd, info));
            locks.AddRange(info.Locks.Select(l => (fd, l)));
        }
        EpollKind.ResolveTargets(pid, fds);
        FindSharedDescriptions(pid, fds);
        image.Fds.AddRange(fds);
        FileLocks.Dump(pid, image, locks);
    }

    /// <summary>dup'ed fds share one offset and one set of flags; after a restore they must again.</summary>
    private static void FindSharedDescriptions(int pid, List<FdImage> fds)
    {
        for (int i = 1; i < fds.Count; i++)
        {
            for (int j = 0; j < i; j++)
            {
                var (a, b) = (fds[j], fds[i]);
                if (a.HasSharesDescriptionWith || a.Kind != b.Kind || a.Description != b.Description || a.PipeWriteEnd != b.PipeWriteEnd)
                    continue;
                if (ProcessFiles.SameDescription(pid, a.Fd, b.Fd))
                {
                    b.SharesDescriptionWith = a.Fd;
                    break;
                }
            }
        }
    }

    /// <summary>What fd <paramref name="fd"/> of <paramref name="pid"/> is, as an image to open it again from; refuses what cannot be.</summary>
    public static FdImage Describe(int pid, int fd) => Describe(pid, fd, ProcFs.ReadFdInfo(pid, fd));

    private static FdImage Describe(int pid, int fd, FdInfo info)
    {
        string link = ProcFs.ReadFdLink(pid, fd);
        var image = new FdImage
        {
            Fd = fd,
            Path = link,
            Description = link,
            Flags = info.Flags & ~CloseOnExecFlag,
            CloseOnExec = (info.Flags & CloseOnExecFlag) != 0,
            Offset = info.Position,
        };
        if (!FileStat.TryGet($"/proc/{pid}/fd/{fd}", out var st))
            throw new TargetGoneException(pid);
        var open = new OpenFd(pid, fd, link, st, info);
        foreach (var kind in FileKinds.All)
        {
            if (kind.TryDump(open, image))
                return image;
        }
        string what = st.IsFifo ? "a FIFO"
            : st.IsSocket ? "a socket"
            : st.IsCharDevice ? "a character device"
            : open.AnonKind is { } anon ? $"an {anon} descriptor"
            : "a file of an unknown kind";
        throw new UnsupportedResourceException(pid, open.What, what);
    }
}
