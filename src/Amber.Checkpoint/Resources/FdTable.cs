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
        var open = ReadAhead(pid, ProcFs.ListFds(pid));
        foreach (var fd in open)
        {
            fds.Add(Describe(fd));
            locks.AddRange(fd.Info.Locks.Select(l => (fd.Fd, l)));
        }
        EpollKind.ResolveTargets(pid, fds);
        EpollKind.ReadReadiness(pid, fds);
        FindSharedDescriptions(pid, fds);
        image.Fds.AddRange(fds);
        FileLocks.Dump(pid, image, locks);
    }

    /// <summary>dup'ed fds share one offset and one set of flags; after a restore they must again.</summary>
    private static void FindSharedDescriptions(int pid, List<FdImage> fds)
    {
        // Only fds of one kind and description can share one (a thousand sockets are a thousand groups of one).
        foreach (var alike in fds.GroupBy(f => (f.Kind, f.Description, f.PipeWriteEnd)).Where(g => g.Skip(1).Any()))
        {
            var group = alike.ToList();
            for (int i = 1; i < group.Count; i++)
            {
                for (int j = 0; j < i; j++)
                {
                    var (a, b) = (group[j], group[i]);
                    if (!a.HasSharesDescriptionWith && ProcessFiles.SameDescription(pid, a.Fd, b.Fd))
                    {
                        b.SharesDescriptionWith = a.Fd;
                        break;
                    }
                }
            }
        }
    }

    /// <summary>What fd <paramref name="fd"/> of <paramref name="pid"/> is, as an image to open it again from; refuses what cannot be.</summary>
    public static FdImage Describe(int pid, int fd) => Describe(Open(pid, fd));

    /// <summary>
    /// What /proc says of each fd, and each socket's options and state: read ahead over every core, as
    /// nothing of one fd depends on another's (a server's thousand connections are most of a freeze).
    /// </summary>
    private static OpenFd[] ReadAhead(int pid, List<int> fds)
    {
        var open = new OpenFd[fds.Count];
        Cores.Spread(fds.Count, i =>
        {
            var fd = Open(pid, fds[i]);
            open[i] = fd.Stat.IsSocket && fd.Fd > 2 ? fd with { Socket = SocketInspector.Inspect(pid, fd.Fd, fd.Stat.Inode) } : fd;
        });
        return open;
    }

    private static OpenFd Open(int pid, int fd)
    {
        var info = ProcFs.ReadFdInfo(pid, fd);
        string link = ProcFs.ReadFdLink(pid, fd);
        if (!FileStat.TryGet($"/proc/{pid}/fd/{fd}", out var st))
            throw new TargetGoneException(pid);
        return new OpenFd(pid, fd, link, st, info);
    }

    private static FdImage Describe(OpenFd open)
    {
        var (pid, fd, link, st, info) = (open.Pid, open.Fd, open.Link, open.Stat, open.Info);
        var image = new FdImage
        {
            Fd = fd,
            Path = link,
            Description = link,
            Flags = info.Flags & ~CloseOnExecFlag,
            CloseOnExec = (info.Flags & CloseOnExecFlag) != 0,
            Offset = info.Position,
        };
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
