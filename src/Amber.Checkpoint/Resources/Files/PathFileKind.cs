using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Resources.Files;

/// <summary>
/// Files opened again by their path: regular files and directories (with flags and offset, and only
/// while the path still names the very file), /dev/null and the character devices that hold no
/// state (/dev/zero, /dev/random, /dev/urandom, /dev/full).
/// </summary>
public sealed class PathFileKind : IFileKind
{
    public IReadOnlyList<FdKind> Restores { get; } = [FdKind.FdRegular, FdKind.FdDirectory, FdKind.FdDevNull, FdKind.FdCharacterDevice];

    public bool TryDump(OpenFd fd, FdImage image)
    {
        var st = fd.Stat;
        if (st.IsRegular || st.IsDirectory)
        {
            if (!fd.Link.StartsWith('/'))
                throw new UnsupportedResourceException(fd.Pid, fd.What, "a file outside the process's file system view");
            if (!FileStat.TryGet(Kernel.Proc.ProcFs.InView(fd.Pid, fd.Link), out var onDisk) || onDisk.Inode != st.Inode || onDisk.Device != st.Device)
                throw new UnsupportedResourceException(fd.Pid, fd.What, "a file whose path now names another file");
            image.Kind = st.IsRegular ? FdKind.FdRegular : FdKind.FdDirectory;
            image.Identity = new FileIdentity { Device = st.Device, Inode = st.Inode, Size = st.Size, MtimeNs = st.MtimeNs };
            return true;
        }
        if (st.IsCharDevice && fd.Link == "/dev/null")
        {
            image.Kind = FdKind.FdDevNull;
            return true;
        }
        if (st.IsCharDevice && fd.Link is "/dev/zero" or "/dev/random" or "/dev/urandom" or "/dev/full")
        {
            image.Kind = FdKind.FdCharacterDevice;
            return true;
        }
        return false;
    }

    public void Restore(FdRestore restore, FdImage fd) => restore.Place(fd, Open(restore.Calls, fd, fd.Path));

    /// <summary>
    /// A new open file description of <paramref name="path"/> as the saved fd had it (flags, offset),
    /// at whatever fd number the kernel gives: the caller moves it to its place.
    /// </summary>
    public static int Open(RemoteCalls calls, FdImage fd, string path)
    {
        int created = calls.OpenAt(path, OpenFlagsOf(fd));
        if (NeedsSeek(fd))
            calls.Seek(created, fd.Offset);
        return created;
    }

    /// <summary>
    /// Queues the open of the fd at its own number, which the kernel gives when it is the lowest free
    /// one (fds are restored in ascending order); when it is not, the fd made is moved there.
    /// </summary>
    public static void Open(SyscallBatch batch, FdRestore restore, FdImage fd)
    {
        batch.OpenAt(fd.Path, OpenFlagsOf(fd), fd.Fd, (created, error) =>
        {
            if (error != null)
                return false;
            restore.Place(fd, (int)created, closeOnExec: true);
            return true;
        });
        if (NeedsSeek(fd))
            batch.Seek(fd.Fd, fd.Offset);
        if (!fd.CloseOnExec)
            batch.SetCloseOnExec(fd.Fd, false);
    }

    private static int OpenFlagsOf(FdImage fd)
    {
        int flags = (int)fd.Flags & ~OpenFlags.CreationOnly;
        if (fd.Kind is FdKind.FdRegular or FdKind.FdDeletedFile)
            flags &= ~OpenFlags.TmpFile; // made with O_TMPFILE: it is a file now, opened by name
        return flags | OpenFlags.CloseOnExec | OpenFlags.NoCtty;
    }

    private static bool NeedsSeek(FdImage fd) =>
        fd.Kind is FdKind.FdRegular or FdKind.FdDeletedFile && fd.Offset != 0 && ((int)fd.Flags & OpenFlags.Path) == 0;
}
