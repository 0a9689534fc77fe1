using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;
using static Amber.Image.Interop.Libc;

namespace Amber.Image;

// File-system operations of the image store: create 0600, open without following symlinks,
// fsync files and directories, rename over an empty directory.
internal static class ImageFiles
{
    internal const UnixFileMode FilePermissions = UnixFileMode.UserRead | UnixFileMode.UserWrite;
    internal const UnixFileMode DirectoryPermissions = FilePermissions | UnixFileMode.UserExecute;

    internal static SafeFileHandle CreateNew(string path)
    {
        int fd = Open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, (int)FilePermissions);
        if (fd < 0)
        {
            throw ImageErrors.Errno("create", path, Marshal.GetLastPInvokeError());
        }
        return new SafeFileHandle(fd, ownsHandle: true);
    }

    /// <summary>Creates a directory with mode 0700; returns false if the path already exists.</summary>
    internal static bool TryCreateDirectory(string path)
    {
        if (Mkdir(path, (uint)DirectoryPermissions) == 0)
        {
            return true;
        }
        int errno = Marshal.GetLastPInvokeError();
        return errno == EEXIST ? false : throw ImageErrors.Errno("create directory", path, errno);
    }

    /// <summary>Opens a regular file for reading, refusing symlinks; null if it does not exist.</summary>
    internal static SafeFileHandle? OpenRegularOrNull(string path, out long length)
    {
        // O_NONBLOCK: a FIFO planted in an image must not hang the reader before it is refused.
        int fd = Open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC, 0);
        if (fd < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            length = 0;
            return errno switch
            {
                ENOENT => null,
                ELOOP => throw ImageErrors.Format(path, "is a symbolic link; image files must be regular files"),
                _ => throw ImageErrors.Errno("open", path, errno),
            };
        }
        var handle = new SafeFileHandle(fd, ownsHandle: true);
        if (Statx(handle, "", AT_EMPTY_PATH, STATX_TYPE | STATX_SIZE, out StatxBuffer stat) != 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            handle.Dispose();
            throw ImageErrors.Errno("stat", path, errno);
        }
        if ((stat.Mode & S_IFMT) != S_IFREG)
        {
            handle.Dispose();
            throw ImageErrors.Format(path, "is not a regular file");
        }
        length = checked((long)stat.Size);
        return handle;
    }

    internal static SafeFileHandle OpenRegular(string path, out long length) =>
        OpenRegularOrNull(path, out length) ?? throw ImageErrors.Format(path, "is missing");

    internal static void Fsync(SafeFileHandle handle, string path)
    {
        if (Interop.Libc.Fsync(handle) != 0)
        {
            throw ImageErrors.Errno("fsync", path, Marshal.GetLastPInvokeError());
        }
    }

    /// <summary>Fsyncs a file or directory by path (directories cannot be opened through .NET).</summary>
    internal static void Fsync(string path)
    {
        int fd = Open(path, O_RDONLY | O_CLOEXEC, 0);
        if (fd < 0)
        {
            throw ImageErrors.Errno("open", path, Marshal.GetLastPInvokeError());
        }
        using var handle = new SafeFileHandle(fd, ownsHandle: true);
        Fsync(handle, path);
    }

    /// <summary>rename(2); returns the errno, or 0 on success.</summary>
    internal static int TryRename(string oldPath, string newPath) =>
        Rename(oldPath, newPath) == 0 ? 0 : Marshal.GetLastPInvokeError();

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
            }
        }
        catch (IOException ex)
        {
            throw ImageErrors.Io("read", path, ex);
        }
    }
}
