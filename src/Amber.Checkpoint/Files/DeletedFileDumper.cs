using Amber.Checkpoint.Memory;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Files;

/// <summary>
/// Files deleted while still open (a common way to keep a temporary file private) exist only
/// through the process's fds: their contents go into the image, read through a copy of the fd.
/// </summary>
public static class DeletedFileDumper
{
    private const int ChunkBytes = 4 << 20;

    public static void Dump(int pid, ProcessImage image, PageFileWriter pages, CancellationToken cancel)
    {
        var buffer = new PageBuffer(ChunkBytes);
        foreach (var fd in image.Fds.Where(f => f.Kind == FdKind.FdDeletedFile).GroupBy(f => f.DeletedFile).Select(g => g.First()))
        {
            cancel.ThrowIfCancellationRequested();
            if (!FileStat.TryGet($"/proc/{pid}/fd/{fd.Fd}", out var st))
                throw new Kernel.TargetGoneException(pid);
            using var file = SharedMemoryFile.FromFd(pid, fd.Fd);
            var deleted = new DeletedFile { Id = fd.DeletedFile, Path = fd.Path, Size = (ulong)st.Size, Mode = st.Mode & 0xfff };
            ShmemDumper.CopyContents(file, pages, deleted.Pages, buffer);
            image.DeletedFiles.Add(deleted);
        }
    }
}
