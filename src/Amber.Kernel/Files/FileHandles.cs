using System.Buffers.Binary;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// Opens the file a file handle names (inotify watches name their inode that way): the handle is
/// opened on the mount of its device with open_by_handle_at; its path, read from /proc/self/fd, may
/// have changed since, the file it names has not.
/// </summary>
public static class FileHandles
{
    /// <summary>The path of the file a handle names (what /proc/self/fd shows of it), and whether it was deleted; null if it cannot be opened.</summary>
    /// <param name="device">The kernel's dev_t (major &lt;&lt; 20 | minor), as fdinfo prints it.</param>
    public static (string Path, bool Deleted)? Resolve(ulong device, int handleType, ReadOnlySpan<byte> handle)
    {
        using var opened = Open(device, handleType, handle);
        if (opened is null || new FileInfo($"/proc/self/fd/{opened.Fd}").LinkTarget is not { } path)
            return null;
        // By its link count, not its name: a file may well be called "x (deleted)".
        bool deleted = FileStat.TryGet($"/proc/self/fd/{opened.Fd}", out var st) && st.Links == 0;
        if (deleted && path.EndsWith(" (deleted)", StringComparison.Ordinal))
            path = path[..^" (deleted)".Length];
        return (path, deleted);
    }

    /// <summary>An O_PATH fd on the file a handle names (open_by_handle_at on the mount of its device); null if it is gone.</summary>
    public static unsafe HeldFile? Open(ulong device, int handleType, ReadOnlySpan<byte> handle)
    {
        string wanted = $"{device >> 20}:{device & 0xfffff}";
        string? mountPoint = Proc.MountInfo.OfThisProcess().FirstOrDefault(m => m.Device == wanted)?.MountPoint;
        if (mountPoint is null)
            return null;
        var mountPath = NativeString.Utf8Z(mountPoint);
        int mount;
        fixed (byte* p = mountPath)
            mount = Interop.Open(p, Interop.O_RDONLY | Interop.O_DIRECTORY | Interop.O_CLOEXEC, 0); // not O_PATH: open_by_handle_at gives EBADF
        if (mount < 0)
            return null;
        using var mountHandle = new SafeFdHandle(mount);
        var fileHandle = new byte[8 + handle.Length];
        BinaryPrimitives.WriteUInt32LittleEndian(fileHandle, (uint)handle.Length);
        BinaryPrimitives.WriteInt32LittleEndian(fileHandle.AsSpan(4), handleType);
        handle.CopyTo(fileHandle.AsSpan(8));
        int fd;
        fixed (byte* h = fileHandle)
            fd = Interop.OpenByHandleAt(mount, h, Interop.O_PATH | Interop.O_CLOEXEC);
        return fd < 0 ? null : new HeldFile(new SafeFdHandle(fd));
    }
}
