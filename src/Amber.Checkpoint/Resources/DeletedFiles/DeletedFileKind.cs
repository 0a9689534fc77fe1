using Amber.Checkpoint.Resources.Files;
using Amber.Image.Schema;

namespace Amber.Checkpoint.Resources.DeletedFiles;

/// <summary>
/// An fd of a file deleted while open: saved by inode (its contents once, by <see cref="DeletedFileDumper"/>),
/// opened again from the file the restore makes again (<see cref="DeletedFileRestorer"/>).
/// </summary>
public sealed class DeletedFileKind : IFileKind
{
    public IReadOnlyList<FdKind> Restores { get; } = [FdKind.FdDeletedFile];

    public bool TryDump(OpenFd fd, FdImage image)
    {
        var st = fd.Stat;
        if (!(st.IsRegular || st.IsDirectory) || !fd.IsDeletedPath)
            return false;
        image.Kind = FdKind.FdDeletedFile;
        image.DeletedFile = st.Inode;
        image.Path = fd.Link[..^OpenFd.DeletedSuffix.Length];
        image.Identity = new FileIdentity { Device = st.Device, Inode = st.Inode, Size = st.Size, MtimeNs = st.MtimeNs };
        return true;
    }

    public void Restore(FdRestore restore, FdImage fd)
    {
        // Made with O_TMPFILE and never named: the fd made then is this one.
        int unnamed = restore.DeletedFiles.TakeUnnamed(fd);
        restore.Place(fd, unnamed >= 0 ? unnamed : PathFileKind.Open(restore.Calls, fd, restore.DeletedFiles.PathOf(fd.DeletedFile)));
    }
}
