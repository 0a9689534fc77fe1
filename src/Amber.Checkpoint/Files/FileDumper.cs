using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Files;

/// <summary>
/// Records every open fd: regular files and directories by path, flags and offset; /dev/null and other
/// character devices by path; pipes, terminals and sockets on fds 0-2 as "external" (they connect
/// the process to whoever started it, and the restore decides what to connect them to). Anything
/// else is refused with the fd and its kind named.
/// </summary>
public static class FileDumper
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
        AnonFdDumper.ResolveEpollTargets(pid, fds);
        FindSharedDescriptions(pid, fds);
        image.Fds.AddRange(fds);
        LockDumper.Dump(pid, image, locks);
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
        string what = $"fd {fd} ({link})";
        if (!FileStat.TryGet($"/proc/{pid}/fd/{fd}", out var st))
            throw new TargetGoneException(pid);

        if (st.IsRegular && link.StartsWith("/memfd:", StringComparison.Ordinal))
        {
            image.Kind = FdKind.FdMemfd;
            image.ShmemId = st.Inode;
            return image;
        }
        if (st.IsRegular || st.IsDirectory)
        {
            if (link.StartsWith('/') && link.EndsWith(" (deleted)", StringComparison.Ordinal))
            {
                image.Kind = FdKind.FdDeletedFile;
                image.DeletedFile = st.Inode;
                image.Path = link[..^" (deleted)".Length];
                image.Identity = new FileIdentity { Device = st.Device, Inode = st.Inode, Size = st.Size, MtimeNs = st.MtimeNs };
                return image;
            }
            if (!link.StartsWith('/'))
                throw new UnsupportedResourceException(pid, what, "a file outside the process's file system view");
            if (!FileStat.TryGet(link, out var onDisk) || onDisk.Inode != st.Inode || onDisk.Device != st.Device)
                throw new UnsupportedResourceException(pid, what, "a file whose path now names another file");
            image.Kind = st.IsRegular ? FdKind.FdRegular : FdKind.FdDirectory;
            image.Identity = new FileIdentity { Device = st.Device, Inode = st.Inode, Size = st.Size, MtimeNs = st.MtimeNs };
            return image;
        }
        if (st.IsCharDevice)
        {
            if (link == "/dev/null")
            {
                image.Kind = FdKind.FdDevNull;
                return image;
            }
            if (IsTerminal(link))
            {
                image.Kind = FdKind.FdExternal;
                return image;
            }
            if (link is "/dev/zero" or "/dev/random" or "/dev/urandom" or "/dev/full")
            {
                image.Kind = FdKind.FdCharacterDevice;
                return image;
            }
            throw new UnsupportedResourceException(pid, what, "a character device");
        }
        if (st.IsFifo && link.StartsWith('/') && !link.EndsWith(" (deleted)", StringComparison.Ordinal))
        {
            image.Kind = FdKind.FdFifo;
            image.PipeId = st.Inode;
            image.PipeWriteEnd = (info.Flags & 3) == 1;
            return image;
        }
        if (st.IsFifo && link.StartsWith("pipe:", StringComparison.Ordinal))
        {
            image.Kind = FdKind.FdPipe;
            image.PipeId = st.Inode;
            image.PipeWriteEnd = (info.Flags & 3) == 1;
            return image;
        }
        if (link.StartsWith("anon_inode:", StringComparison.Ordinal) && AnonFdDumper.TryDump(pid, image, link))
            return image;
        if (st.IsSocket && fd > 2)
        {
            SocketDumper.Dump(pid, image);
            return image;
        }
        if ((st.IsFifo || st.IsSocket) && fd <= 2)
        {
            image.Kind = FdKind.FdExternal;
            return image;
        }
        string kind = st.IsFifo ? "a FIFO"
            : st.IsSocket ? "a socket"
            : link.StartsWith("anon_inode:", StringComparison.Ordinal) ? $"an {link["anon_inode:".Length..].Trim('[', ']')} descriptor"
            : "a file of an unknown kind";
        throw new UnsupportedResourceException(pid, what, kind);
    }

    private static bool IsTerminal(string path) =>
        path.StartsWith("/dev/pts/", StringComparison.Ordinal) || path.StartsWith("/dev/tty", StringComparison.Ordinal)
        || path == "/dev/console";
}
