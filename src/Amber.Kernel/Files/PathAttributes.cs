using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>Sets what stat(2) shows of a path, never following a symlink at its end (a storage rollback).</summary>
public static class PathAttributes
{
    /// <summary>Owner, then permissions (a chown clears set-id bits), then times; a symlink gets owner and times only.</summary>
    public static unsafe void Set(string path, bool symlink, uint uid, uint gid, uint permissions, long atimeNs, long mtimeNs)
    {
        fixed (byte* p = NativeString.Utf8Z(path))
        {
            Errnos.Check(Interop.Fchownat(Interop.AT_FDCWD, p, uid, gid, Interop.AT_SYMLINK_NOFOLLOW), "fchownat", path);
            if (!symlink)
                Errnos.Check(Interop.Fchmodat(Interop.AT_FDCWD, p, permissions, 0), "fchmodat", path);
            var times = stackalloc Timespec[2];
            times[0] = Timespec.FromNs(atimeNs);
            times[1] = Timespec.FromNs(mtimeNs);
            Errnos.Check(Interop.Utimensat(Interop.AT_FDCWD, p, times, Interop.AT_SYMLINK_NOFOLLOW), "utimensat", path);
        }
    }

    /// <summary>Owner and permissions of a path that is not a symlink (checked first: chmod would follow one).</summary>
    public static unsafe void SetOwnerAndMode(string path, uint uid, uint gid, uint permissions)
    {
        if (!FileStat.TryGetNoFollow(path, out var st) || st.IsSymlink)
            throw new IOException($"{path} is gone or has become a symlink");
        fixed (byte* p = NativeString.Utf8Z(path))
        {
            Errnos.Check(Interop.Fchownat(Interop.AT_FDCWD, p, uid, gid, Interop.AT_SYMLINK_NOFOLLOW), "fchownat", path);
            Errnos.Check(Interop.Fchmodat(Interop.AT_FDCWD, p, permissions, 0), "fchmodat", path);
        }
    }

    public static unsafe void MakeFifo(string path, uint permissions)
    {
        fixed (byte* p = NativeString.Utf8Z(path))
            Errnos.Check(Interop.Mkfifo(p, permissions), "mkfifo", path);
    }

    /// <summary>A hard link: <paramref name="newPath"/> another name of <paramref name="existing"/>.</summary>
    public static unsafe void Link(string existing, string newPath)
    {
        fixed (byte* e = NativeString.Utf8Z(existing))
        fixed (byte* n = NativeString.Utf8Z(newPath))
            Errnos.Check(Interop.Link(e, n), "link", $"{newPath} to {existing}");
    }

    /// <summary>Makes a file's data durable (fsync).</summary>
    public static void Fsync(Microsoft.Win32.SafeHandles.SafeFileHandle file, string path) =>
        Errnos.Check(Interop.Fsync(file), "fsync", path);

    /// <summary>Makes a directory's entries durable (fsync of the directory).</summary>
    public static unsafe void FsyncDirectory(string path)
    {
        int fd;
        fixed (byte* p = NativeString.Utf8Z(path))
            fd = Errnos.Check(Interop.Open(p, Interop.O_RDONLY | Interop.O_DIRECTORY | Interop.O_CLOEXEC, 0), "open", path);
        using var handle = new Microsoft.Win32.SafeHandles.SafeFileHandle(fd, ownsHandle: true);
        Errnos.Check(Interop.Fsync(handle), "fsync", path);
    }
}
