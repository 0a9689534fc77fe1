using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Locks;

/// <summary>
/// The file locks a process holds, each tied to the fd it was taken through, so that a restore can
/// take them again. They come from the fds' fdinfo, not from /proc/locks: reading /proc/locks takes
/// the kernel's lock-list write lock, which waits for an RCU grace period (10–30 ms on these VMs),
/// all of it spent with the processes frozen. fdinfo also shows OFD locks, which /proc/locks
/// attributes to no process (pid -1). fdinfo shows a flock or OFD lock in every process that has the
/// open file: a flock is recorded by the process that took it (its pid is shown), an OFD lock by
/// each (the restore shares the open file again, and taking it once more through it changes nothing).
/// A wait for a lock needs nothing: the freeze interrupts it, and the restored call waits again.
/// </summary>
public static class FileLocks
{
    public static void Dump(int pid, ProcessImage image, IEnumerable<(int Fd, FdLock Lock)> locks)
    {
        // dup'ed fds are one open file and each shows its locks; two open files of one file may each
        // hold a lock that reads the same (two shared flocks), and both are kept.
        var seen = new HashSet<(int OpenFile, FdLock Lock)>();
        foreach (var (fd, l) in locks)
        {
            var through = image.Fds.First(f => f.Fd == fd);
            int openFile = through.HasSharesDescriptionWith ? through.SharesDescriptionWith : fd;
            if (!seen.Add((openFile, l)) || (l.Kind == "FLOCK" && l.Pid != pid))
                continue;
            string what = $"a {l.Kind} lock on inode {l.Device}:{l.Inode}";
            var kind = l.Kind switch
            {
                "FLOCK" => FileLock.Types.Kind.Flock,
                "POSIX" => FileLock.Types.Kind.Posix,
                "OFDLCK" => FileLock.Types.Kind.Ofd,
                _ => throw new UnsupportedResourceException(pid, what, $"a {l.Kind} lock"),
            };
            if (l.Mode != "ADVISORY")
                throw new UnsupportedResourceException(pid, what, "a mandatory lock");
            if (through.Kind != FdKind.FdRegular)
                throw new UnsupportedResourceException(pid, what, $"a lock held through fd {fd} ({through.Path}), not a regular file");
            long length = l.End is { } end ? end - l.Start + 1 : 0;
            image.Locks.Add(new FileLock { Kind = kind, Write = l.Write, Fd = fd, Start = l.Start, Length = length });
        }
    }

    /// <summary>
    /// Takes every lock again, through the fd it was taken with. Only once the process's fd table is
    /// whole and its slots closed: closing a slot that holds a file the process has POSIX locks on
    /// releases them all.
    /// </summary>
    public static void Restore(RemoteCalls calls, ProcessImage image)
    {
        foreach (var l in image.Locks)
        {
            try
            {
                if (l.Kind == FileLock.Types.Kind.Flock)
                    calls.Flock(l.Fd, l.Write);
                else
                    calls.LockRange(l.Fd, l.Kind == FileLock.Types.Kind.Ofd, l.Write, l.Start, l.Length);
            }
            catch (KernelCallException e) when (e.Errno is Errnos.EAGAIN or Errnos.EACCES)
            {
                var fd = image.Fds.First(f => f.Fd == l.Fd);
                throw new CheckpointException($"process {image.Pid} held a {(l.Write ? "write" : "read")} lock on {fd.Path}, which another process holds now");
            }
        }
    }
}
