using System.Globalization;
using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Files;

/// <summary>
/// The locks a process holds, from /proc/locks, each tied to one of its fds on the locked file, so a
/// restore can take them again. A process waiting for a lock is refused (the wait would be lost).
/// </summary>
public static class LockDumper
{
    public static void Dump(int pid, ProcessImage image)
    {
        string pidText = pid.ToString(CultureInfo.InvariantCulture);
        foreach (var line in File.ReadLines("/proc/locks"))
        {
            // "1: FLOCK  ADVISORY  WRITE 1234 08:01:5678 0 EOF"; "1: -> POSIX ..." is a waiter.
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            if (f.Length < 8)
                continue;
            bool waiter = f[1] == "->";
            int at = waiter ? 2 : 1;
            if (f.Length < at + 7 || f[at + 3] != pidText)
                continue;
            string what = $"a {f[at]} lock on inode {f[at + 4]}";
            if (waiter)
                throw new UnsupportedResourceException(pid, what, "a wait for a file lock");
            if (f[at + 1] != "ADVISORY")
                throw new UnsupportedResourceException(pid, what, "a mandatory lock");
            var kind = f[at] switch
            {
                "FLOCK" => FileLock.Types.Kind.Flock,
                "POSIX" => FileLock.Types.Kind.Posix,
                "OFDLCK" => FileLock.Types.Kind.Ofd,
                _ => throw new UnsupportedResourceException(pid, what, $"a {f[at]} lock"),
            };
            ulong inode = ulong.Parse(f[at + 4].Split(':')[2], CultureInfo.InvariantCulture);
            var fd = image.Fds.FirstOrDefault(x => x.Identity is { } id && id.Inode == inode && x.Kind == FdKind.FdRegular)
                ?? throw new UnsupportedResourceException(pid, what, "a lock on a file the process has no fd of");
            long start = long.Parse(f[at + 5], CultureInfo.InvariantCulture);
            long length = f[at + 6] == "EOF" ? 0 : long.Parse(f[at + 6], CultureInfo.InvariantCulture) - start + 1;
            image.Locks.Add(new FileLock { Kind = kind, Write = f[at + 2] == "WRITE", Fd = fd.Fd, Start = start, Length = length });
        }
    }
}
