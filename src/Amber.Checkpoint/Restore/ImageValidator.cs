using Amber.Checkpoint.Resources.Memory;
using Amber.Checkpoint.Resources.Sockets;
using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// Checks a process image for consistency and against this machine before anything is created, so a
/// restore that cannot succeed fails before it starts. Returns warnings for what is merely different.
/// </summary>
public static class ImageValidator
{
    private const ulong PageSize = Amber.Image.ImageFormat.PageSize;
    private const ulong TaskSize = 0x7ffffffff000;
    private const int RegistersSize = 216;

    /// <param name="pageDataEnd">Where the page data of a process's page file ends, in this checkpoint or a source of it.</param>
    /// <param name="rolledBack">Whether a path is in the checkpoint's storage: put back as it was before the processes are made, so not checked now.</param>
    public static List<string> Validate(ProcessImage image, Func<int, Amber.Image.PageFileRef, ulong> pageDataEnd, RestoreTree tree, Func<string, bool> rolledBack)
    {
        var warnings = new List<string>();
        int pid = image.Pid;
        void Fail(string what) => throw new CheckpointException($"image of process {pid} is inconsistent: {what}");
        // Contents of shared objects may be in another process's page file (pages_of), and the pages
        // of an incremental checkpoint in the page files of earlier ones (source), or in layers (layer).
        ulong EndOf(int pagesOf, Amber.Image.PageFileRef where) => pageDataEnd(pagesOf == 0 ? pid : pagesOf, where);
        bool BadRun(PageRun r, int pagesOf) =>
            r.Count == 0 || r.Count > 1 << 20 || (ulong)r.PageXxh3.Count != r.Count || r.FileOffset % PageSize != 0 || r.FileOffset < PageSize
            || (!r.IsBlock
                ? r.FileOffset + r.Count * PageSize > EndOf(pagesOf, r.StoredIn)
                : r.Codec is not (Codec.None or Codec.Zstd or Codec.Lz4) || r.StoredLength == 0 || r.Skip + r.Count > Amber.Image.PageCodec.MaxPages
                  || (r.Encrypted && (r.Nonce.Length != 12 || r.Tag.Length != 16))
                  || r.FileOffset + r.StoredLength > EndOf(pagesOf, r.StoredIn));

        // Only in a PID namespace of their own is a process of the checkpoint PID 1 (its first).
        int lowest = tree.NewPidNamespace ? 1 : 2;
        if (pid < lowest)
            Fail($"bad pid {pid}");
        if (image.Threads.Count == 0 || image.Threads.Count > 65536 || image.Threads[0].Tid != pid)
            Fail($"{image.Threads.Count} threads, the first {(image.Threads.Count > 0 ? image.Threads[0].Tid : 0)} (it must be the process itself)");
        if (image.Threads.Select(t => t.Tid).Distinct().Count() != image.Threads.Count || image.Threads.Any(t => t.Tid < lowest))
            Fail("thread ids are repeated or invalid");
        foreach (var t in image.Threads)
        {
            if (t.Regs.Length != RegistersSize)
                Fail($"thread {t.Tid} registers are {t.Regs.Length} bytes");
            if (t.Xstate.Length is < 512 or > 65536)
                Fail($"thread {t.Tid} xstate is {t.Xstate.Length} bytes");
        }
        if (image.Creds is null || image.Creds.Uids.Count < 3 || image.Creds.Gids.Count < 3 || image.Creds.Groups.Count > 512)
            Fail("credentials missing or malformed");
        if (image.Mm is null || image.Mm.Vmas.Count == 0)
            Fail("no memory map");
        if (image.Mm!.PageSize != PageSize)
            Fail($"page size {image.Mm.PageSize}");
        // Every path the restore opens, makes, binds or removes: absolute and canonical, whoever wrote
        // the image (an fd on "../../etc/shadow" would be opened relative to wherever amber works).
        foreach (var (path, what) in PathsOf(image))
        {
            if (CanonicalPathProblem(path) is { } problem)
                Fail($"{what} '{path}' {problem}");
        }
        if (image.Fds.Select(f => f.Fd).Distinct().Count() != image.Fds.Count)
            Fail("an fd number appears twice");

        // A file is usually mapped several times (a library's code, data...): one stat each.
        var checkedFiles = new HashSet<(string, FileIdentity?)>();
        ulong previousEnd = 0;
        foreach (var v in image.Mm.Vmas)
        {
            if (v.Start % PageSize != 0 || v.End % PageSize != 0 || v.End <= v.Start || v.Start < previousEnd)
                Fail($"mapping {v.Start:x}-{v.End:x} is misaligned, empty or overlaps the previous one");
            if (v.End > TaskSize && v.Kind != VmaKind.VmaVsyscall)
                Fail($"mapping {v.Start:x}-{v.End:x} is outside the user address space");
            previousEnd = v.End;
            if (v.Kind == VmaKind.VmaFile && checkedFiles.Add((v.Path, v.Identity)) && !rolledBack(v.Path))
                CheckFile(v.Path, v.Identity, $"mapped file {v.Path}");
        }
        var shmemIds = image.Mm.Shmem.Select(s => s.Id).ToHashSet();
        var deletedIds = image.DeletedFiles.Select(d => d.Id).ToHashSet();
        bool HasShmem(ulong id) => shmemIds.Contains(id) || tree.ObjectSlots.ContainsKey((ObjectKind.Shmem, id));
        bool HasDeleted(ulong id) => deletedIds.Contains(id) || tree.ObjectSlots.ContainsKey((ObjectKind.Deleted, id));
        foreach (var v in image.Mm.Vmas.Where(v => !v.Inherited))
        {
            if (v.Kind == VmaKind.VmaShmem && !HasShmem(v.ShmemId))
                Fail($"mapping {v.Start:x}-{v.End:x} refers to shared memory {v.ShmemId}, which the image does not hold");
            if (v.Kind == VmaKind.VmaSysv && !tree.Creators.Any(i => !i.Zombie && i.Mm.SysvShm.Any(s => (ulong)s.Id == v.ShmemId)))
                Fail($"mapping {v.Start:x}-{v.End:x} attaches System V segment {v.ShmemId}, which the image does not hold");
            if (v.Kind == VmaKind.VmaDeletedFile && !HasDeleted(v.ShmemId))
                Fail($"mapping {v.Start:x}-{v.End:x} maps deleted file {v.Path}, whose contents the image does not hold");
        }
        if (image.CwdDeleted != 0 && !HasDeleted(image.CwdDeleted))
            Fail($"its working directory {image.Cwd} was deleted, and the image does not hold it");
        foreach (var s in image.Mm.SysvShm)
        {
            if (s.Pages.Any(r => r.Address >= s.Size || BadRun(r, s.PagesOf)))
                Fail($"System V segment {s.Id} has a page run outside the segment or the page file");
        }
        foreach (var s in image.Mm.Shmem)
        {
            if (s.Pages.Any(r => r.Address % PageSize != 0 || r.Address + r.Count * PageSize > s.Size + PageSize - 1 || BadRun(r, s.PagesOf)))
                Fail($"shared memory {s.Id} has a page run outside the object or the page file");
        }
        foreach (var d in image.DeletedFiles)
        {
            if (!d.Path.StartsWith('/') || d.Pages.Any(r => r.Address % PageSize != 0 || r.Address >= d.Size || BadRun(r, d.PagesOf)))
                Fail($"deleted file {d.Path} has a bad path or a page run outside the file or the page file");
        }
        int vmaIndex = 0;
        ulong previousRunEnd = 0;
        foreach (var run in image.Mm.Pages)
        {
            ulong length = run.Count * PageSize;
            if (run.Count == 0 || run.Count > 1 << 20 || run.Address % PageSize != 0 || run.Address < previousRunEnd)
                Fail($"page run at {run.Address:x} is empty, misaligned or out of order");
            while (vmaIndex < image.Mm.Vmas.Count && image.Mm.Vmas[vmaIndex].End <= run.Address)
                vmaIndex++;
            if (vmaIndex == image.Mm.Vmas.Count || image.Mm.Vmas[vmaIndex].Start > run.Address || run.Address + length > image.Mm.Vmas[vmaIndex].End)
                Fail($"page run at {run.Address:x} ({run.Count} pages) lies outside the mappings");
            if (BadRun(run, 0))
                Fail($"page run at {run.Address:x} points outside its page file or lacks page checksums");
            previousRunEnd = run.Address + length;
        }

        // SEMVMX is 32767; a message's type is positive.
        if (image.SysvSemaphores.Any(set => set.Values.Count == 0 || set.Values.Any(v => v > 32767)))
            Fail("a System V semaphore set is empty or holds a value above 32767");
        if (image.SysvQueues.Any(q => q.Messages.Any(m => m.Type <= 0)))
            Fail("a System V message has a type below 1");
        if (!rolledBack(image.ExePath))
            CheckFile(image.ExePath, image.ExeIdentity, "executable");
        var pipes = image.Pipes.Select(p => p.Id).ToHashSet();
        var fdNumbers = image.Fds.Select(f => f.Fd).ToHashSet();
        if (image.Pipes.Any(p => p.Data.Length > p.Capacity))
            Fail("a pipe holds more bytes than its capacity");
        foreach (var pty in image.Ptys)
        {
            if (pty.Termios.Length != PtyMaster.TermiosSize || pty.WindowSize.Length != PtyMaster.WindowSizeSize)
                Fail($"pseudo-terminal {pty.Index} has a termios or window size of the wrong size");
            if (!pty.MasterPath.EndsWith("/ptmx", StringComparison.Ordinal))
                Fail($"pseudo-terminal {pty.Index}'s master '{pty.MasterPath}' is not a ptmx");
        }
        foreach (var fd in image.Fds)
        {
            if (fd.Fd < 0 || fd.Fd > 1 << 20)
                Fail($"fd number {fd.Fd}");
            if (fd.Kind == FdKind.FdSocketPair && fd.SocketPair == 0)
                Fail($"fd {fd.Fd} is a connected unix socket without its pair");
            if (fd.SharedFile != 0 && !tree.FileSlots.ContainsKey(fd.SharedFile))
                Fail($"fd {fd.Fd} is an open file shared in the tree that the image does not hold");
            if (fd.Kind == FdKind.FdMemfd && !image.Mm.Shmem.Any(s => s.Id == fd.ShmemId && !s.Anonymous) && !tree.ObjectSlots.ContainsKey((ObjectKind.Shmem, fd.ShmemId)))
                Fail($"fd {fd.Fd} is a memfd the image does not hold");
            if (fd.Kind == FdKind.FdPipe && !pipes.Contains(fd.PipeId) && !tree.Slots.ContainsKey((fd.PipeId, fd.PipeWriteEnd)))
                Fail($"fd {fd.Fd} is an end of pipe {fd.PipeId}, which the image does not hold");
            if (fd.HasSharesDescriptionWith && (fd.SharesDescriptionWith >= fd.Fd || !fdNumbers.Contains(fd.SharesDescriptionWith)))
                Fail($"fd {fd.Fd} shares its file with fd {fd.SharesDescriptionWith}, which is not a lower fd of the image");
            if (fd.Kind == FdKind.FdDeletedFile && !HasDeleted(fd.DeletedFile))
                Fail($"fd {fd.Fd} is a deleted file whose contents the image does not hold");
            if (fd.Kind is FdKind.FdPtyMaster or FdKind.FdPtySlave && !tree.Ptys.ContainsKey(fd.PtyIndex))
                Fail($"fd {fd.Fd} is a side of pseudo-terminal {fd.PtyIndex}, which the image does not hold");
            foreach (var watch in fd.Inotify)
            {
                if (watch.Deleted && !HasDeleted(watch.Inode))
                    Fail($"fd {fd.Fd} watches the deleted file {watch.Path}, which the image does not hold");
                if (watch.Deleted || rolledBack(watch.Path))
                    continue;
                using var held = watch.Handle.IsEmpty ? null : FileHandles.Open(watch.Device, watch.HandleType, watch.Handle.Span);
                if (held is not null)
                    continue;
                if (!Path.Exists(watch.Path))
                    throw new CheckpointException($"cannot restore process {pid}: fd {fd.Fd} watched {watch.Path} (inotify), which no longer exists");
                warnings.Add($"fd {fd.Fd}: the file inotify watch {watch.Wd} was on is gone (or on another machine); it now watches what {watch.Path} names");
            }
            if (fd.Kind is FdKind.FdRegular or FdKind.FdDirectory && !rolledBack(fd.Path) && !tree.ProcFileOf(fd.Path).Any())
            {
                if (!FileStat.TryGet(fd.Path, out var st))
                    throw new CheckpointException($"cannot restore process {pid}: fd {fd.Fd} was {fd.Path}, which no longer exists");
                if (fd.Kind == FdKind.FdRegular && st.Size < fd.Offset)
                    warnings.Add($"fd {fd.Fd} ({fd.Path}) is now {st.Size} bytes, shorter than its saved offset {fd.Offset}");
                else if (fd.Kind == FdKind.FdRegular && fd.Identity is { } id && (st.Size != id.Size || st.MtimeNs != id.MtimeNs))
                    warnings.Add($"fd {fd.Fd} ({fd.Path}) changed since the checkpoint (size {id.Size} → {st.Size})");
            }
        }
        if (image.CwdDeleted == 0 && !rolledBack(image.Cwd) && !Directory.Exists(image.Cwd))
            throw new CheckpointException($"cannot restore process {pid}: its working directory {image.Cwd} no longer exists");
        return warnings;
    }

    /// <summary>Every path of the image the restore acts on, with what it is.</summary>
    private static IEnumerable<(string Path, string What)> PathsOf(ProcessImage image)
    {
        yield return (image.ExePath, "the executable");
        yield return (image.Cwd, "the working directory");
        if (image.Cgroup.Length > 0)
            yield return (image.Cgroup, "its cgroup");
        foreach (var fd in image.Fds)
        {
            if (fd.Kind is FdKind.FdRegular or FdKind.FdDirectory or FdKind.FdDevNull or FdKind.FdCharacterDevice or FdKind.FdFifo or FdKind.FdDeletedFile)
                yield return (fd.Path, $"fd {fd.Fd}");
            foreach (var watch in fd.Inotify)
                yield return (watch.Path, $"fd {fd.Fd}'s inotify watch {watch.Wd}");
            if (fd.Socket is { } socket && SocketRestorer.UnixPath(socket) is { } bound)
                yield return (bound, $"fd {fd.Fd}'s socket address");
        }
        foreach (var v in image.Mm.Vmas.Where(v => v.Kind is VmaKind.VmaFile or VmaKind.VmaDeletedFile))
            yield return (v.Path, $"mapping {v.Start:x}-{v.End:x}");
        foreach (var d in image.DeletedFiles)
            yield return (d.Path, "a deleted file");
        foreach (var pty in image.Ptys)
        {
            yield return (pty.MasterPath, $"pseudo-terminal {pty.Index}'s master");
            yield return (pty.SlaveDirectory, $"pseudo-terminal {pty.Index}'s slave directory");
        }
    }

    /// <summary>Why a path is not absolute and canonical (no empty, "." or ".." component, no NUL), or null.</summary>
    public static string? CanonicalPathProblem(string path)
    {
        if (!path.StartsWith('/'))
            return "is not absolute";
        if (path.Contains('\0'))
            return "holds a NUL";
        if (path == "/")
            return null;
        foreach (var part in path[1..].Split('/'))
        {
            if (part is "" or "." or "..")
                return $"is not canonical (it has a{(part == "" ? "n empty" : $" '{part}'")} component)";
        }
        return null;
    }

    private static void CheckFile(string path, FileIdentity? identity, string what)
    {
        if (!path.StartsWith('/'))
            throw new CheckpointException($"{what} has a relative path '{path}'");
        if (!FileStat.TryGet(path, out var st))
            throw new CheckpointException($"cannot restore: {what} {path} no longer exists");
        if (identity is not null && (st.Size != identity.Size || st.MtimeNs != identity.MtimeNs))
            throw new CheckpointException($"cannot restore: {what} {path} changed since the checkpoint (size {identity.Size} → {st.Size}); the saved memory belongs to the old file");
    }
}
