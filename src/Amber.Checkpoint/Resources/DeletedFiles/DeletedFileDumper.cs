using Amber.Checkpoint.Resources.Memory;
using Amber.Checkpoint.Resources.SharedMemory;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Resources.DeletedFiles;

/// <summary>
/// Files deleted while still open or mapped (a common way to keep a temporary file private, or a
/// library replaced on disk) exist only through the process's fds and mappings: their contents go
/// into the image, read through /proc/PID/fd or /proc/PID/map_files, once per checkpoint. A directory
/// removed while it was a working directory or open is kept too (it is empty: owner and mode only).
/// </summary>
public static class DeletedFileDumper
{
    private const int ChunkBytes = 4 << 20;

    public static void Dump(int pid, int imagePid, ProcessImage image, PageFileWriter pages, SavedObjects saved, ParentCheckpoint? earlier, CancellationToken cancel)
    {
        PageBuffer? buffer = null; // made for a process that has any (ShmemDumper.Dump)
        var byFd = image.Fds.Where(f => f.Kind == FdKind.FdDeletedFile).Select(f => (Id: f.DeletedFile, f.Path, Fd: (FdImage?)f, Vma: (Vma?)null));
        var byMapping = image.Mm.Vmas.Where(v => v.Kind == VmaKind.VmaDeletedFile).Select(v => (Id: v.ShmemId, v.Path, Fd: (FdImage?)null, Vma: (Vma?)v));
        if (image.CwdDeleted != 0 && saved.Claim(ObjectKind.Deleted, image.CwdDeleted, pid))
            image.DeletedFiles.Add(DeletedDirectory(pid, image.CwdDeleted, image.Cwd, $"/proc/{pid}/cwd"));
        foreach (var (id, path, fd, vma) in byFd.Concat(byMapping))
        {
            cancel.ThrowIfCancellationRequested();
            if (!saved.Claim(ObjectKind.Deleted, id, pid))
                continue;
            if (fd is not null && FileStat.TryGet($"/proc/{pid}/fd/{fd.Fd}", out var dir) && dir.IsDirectory)
            {
                image.DeletedFiles.Add(DeletedDirectory(pid, id, path, $"/proc/{pid}/fd/{fd.Fd}"));
                continue;
            }
            using var file = fd is not null ? RemoteFile.FromFd(pid, fd.Fd, writable: false) : RemoteFile.FromMapping(pid, vma!.Start, vma.End, writable: false);
            var st = file.Stat();
            var deleted = new DeletedFile { Id = id, Path = path, Size = (ulong)st.Size, Mode = st.Mode & 0xfff, Uid = st.Uid, Gid = st.Gid };
            ShmemDumper.CopyContents(file, pages, deleted.Pages, buffer ??= new PageBuffer(ChunkBytes),
                earlier?.ObjectOf(imagePid, p => p.DeletedFiles.Where(d => d.Id == id).Select(d => ((IList<PageRun>)d.Pages, d.PagesOf))));
            image.DeletedFiles.Add(deleted);
        }
    }

    /// <summary>A directory removed while in use is empty: its owner and mode are all there is to it.</summary>
    private static DeletedFile DeletedDirectory(int pid, ulong id, string path, string procPath)
    {
        if (!FileStat.TryGet(procPath, out var st))
            throw new Kernel.TargetGoneException(pid);
        return new DeletedFile { Id = id, Path = path, Mode = st.Mode & 0xfff, Uid = st.Uid, Gid = st.Gid, Directory = true };
    }
}
