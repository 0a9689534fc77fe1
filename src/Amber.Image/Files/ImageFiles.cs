using System.Runtime.InteropServices;
using Amber.Native;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

// File-system operations of the image store: create 0600, open without following symlinks,
// fsync files and directories, rename over an empty directory.
internal static class ImageFiles
{
    internal const UnixFileMode FilePermissions = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    internal const UnixFileMode DirectoryPermissions = FilePermissions | UnixFileMode.UserExecute;

    internal static SafeFileHandle CreateNew(string path)
    {
        int fd = Open(path, Interop.O_WRONLY | Interop.O_CREAT | Interop.O_EXCL | Interop.O_CLOEXEC | Interop.O_NOFOLLOW, (int)FilePermissions);
        if (fd < 0)
        {
            throw ImageErrors.Errno("create", path, Marshal.GetLastPInvokeError());
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>
    /// An unnamed file in <paramref name="directory"/> (O_TMPFILE, mode 0600), open for reading and
    /// writing: it never shows in the directory and goes when closed, even if amber is killed.
    /// </summary>
    internal static SafeFileHandle CreateUnnamed(string directory)
    {
        int fd = Open(directory, Interop.O_TMPFILE | Interop.O_RDWR | Interop.O_CLOEXEC, (int)FilePermissions);
        if (fd < 0)
        {
            throw ImageErrors.Errno("create an unnamed file in", directory, Marshal.GetLastPInvokeError());
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Creates a directory with mode 0700; returns false if the path already exists.</summary>
    internal static unsafe bool TryCreateDirectory(string path)
    {
        fixed (byte* p = NativeString.Utf8Z(path))
        {
            if (Interop.Mkdir(p, (uint)DirectoryPermissions) == 0)
            {
                return true;
            }
        }
        int errno = Marshal.GetLastPInvokeError();
        return errno == Interop.EEXIST ? false : throw ImageErrors.Errno("create directory", path, errno);
    }

    /// <summary>Opens a regular file for reading, refusing symlinks; null if it does not exist.</summary>
    internal static unsafe SafeFileHandle? OpenRegularOrNull(string path, out long length)
    {
        // O_NONBLOCK: a FIFO planted in an image must not hang the reader before it is refused.
        int fd = Open(path, Interop.O_RDONLY | Interop.O_NOFOLLOW | Interop.O_NONBLOCK | Interop.O_CLOEXEC, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            length = 0;
            return errno switch
            {
                Interop.ENOENT => null,
                Interop.ELOOP => throw ImageErrors.Format(path, "is a symbolic link; image files must be regular files"),
                _ => throw ImageErrors.Errno("open", path, errno),
            };
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        Statx stat;
        byte emptyPath = 0;
        if (Interop.Statx(handle, &emptyPath, Interop.AT_EMPTY_PATH, Interop.STATX_TYPE | Interop.STATX_SIZE, &stat) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw ImageErrors.Errno("stat", path, errno);
        }
        if ((stat.stx_mode & Interop.S_IFMT) != Interop.S_IFREG)
        {
            handle.Dispose();
            throw ImageErrors.Format(path, "is not a regular file");
        }
        length = checked((long)stat.stx_size);
        return handle;
    }

    internal static SafeFileHandle OpenRegular(string path, out long length) =>
        OpenRegularOrNull(path, out length) ?? throw ImageErrors.Format(path, "is missing");

    internal static void Fsync(SafeFileHandle handle, string path)
    {
        if (Interop.Fsync(handle) != 0)
        {
            throw ImageErrors.Errno("fsync", path, Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>Fsyncs a file or directory by path (directories cannot be opened through .NET).</summary>
    internal static void Fsync(string path)
    {
        int fd = Open(path, Interop.O_RDONLY | Interop.O_CLOEXEC, 0);
        if (fd < 0)
        {
            throw ImageErrors.Errno("open", path, Marshal.GetLastPInvokeError());
        }
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        Fsync(handle, path);
    }

    /// <summary>rename(2); returns the errno, or 0 on success.</summary>
    internal static unsafe int TryRename(string oldPath, string newPath)
    {
        fixed (byte* from = NativeString.Utf8Z(oldPath))
        fixed (byte* to = NativeString.Utf8Z(newPath))
        {
            return Interop.Rename(from, to) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>link(2); returns the errno, or 0 on success.</summary>
    internal static unsafe int TryLink(string existing, string newPath)
    {
        fixed (byte* from = NativeString.Utf8Z(existing))
        fixed (byte* to = NativeString.Utf8Z(newPath))
        {
            return Interop.Link(from, to) == 0 ? 0 : Marshal.GetLastPInvokeError();
        }
    }

    /// <summary>Swaps two directories (or files) atomically: each name then holds what the other did.</summary>
    /// <exception cref="ImageStoreException">The swap failed; nothing changed.</exception>
    internal static unsafe void Exchange(string a, string b)
    {
        fixed (byte* pa = NativeString.Utf8Z(a))
        fixed (byte* pb = NativeString.Utf8Z(b))
        {
            if (Interop.Renameat2(Interop.AT_FDCWD, pa, Interop.AT_FDCWD, pb, Interop.RENAME_EXCHANGE) != 0)
            {
                throw ImageErrors.Errno($"swap {a} with", b, Marshal.GetLastPInvokeError());
            }
        }
    }

    /// <summary>open(2) of a path; returns the fd, or -1 with the errno in <see cref="Marshal.GetLastPInvokeError"/>.</summary>
    private static unsafe int Open(string path, int flags, int mode)
    {
        fixed (byte* p = NativeString.Utf8Z(path))
        {
            return Interop.Open(p, flags, mode);
        }
    }

    /// <summary>Fills <paramref name="destination"/> from <paramref name="offset"/>; a short file is a truncated image.</summary>
    internal static void ReadExactly(SafeFileHandle handle, Span<byte> destination, long offset, string path)
    {
        try
        {
            while (!destination.IsEmpty)
            {
                int read = RandomAccess.Read(handle, destination, offset);
                if (read == 0)
                {
                    throw ImageErrors.Format(path, $"truncated: ends before offset {offset + destination.Length}");
                }
                destination = destination[read..];
                offset += read;
                PageProgress.Read(read);
            }
        }
        catch (IOException ex)
        {
            throw ImageErrors.Io("read", path, ex);
        }
    }
}
