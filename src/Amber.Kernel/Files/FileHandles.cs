using System.Buffers.Binary;
using System.Globalization;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// Turns a file handle the kernel reports (inotify watches name their inode that way) back into a
/// path: the handle is opened on the mount of its device with open_by_handle_at, and the path read
/// from /proc/self/fd.
/// </summary>
public static class FileHandles
{
    /// <param name="device">The kernel's dev_t (major &lt;&lt; 20 | minor), as fdinfo prints it.</param>
    public static unsafe string? ResolvePath(ulong device, int handleType, ReadOnlySpan<byte> handle)
    {
        string wanted = $"{device >> 20}:{device & 0xfffff}";
        string? mountPoint = File.ReadLines("/proc/self/mountinfo")
            .Select(l => l.Split(' '))
            .Where(f => f.Length > 4 && f[2] == wanted)
            .Select(f => Unescape(f[4])).FirstOrDefault();
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
        if (fd < 0)
            return null;
        using var opened = new SafeFdHandle(fd);
        return new FileInfo($"/proc/self/fd/{fd}").LinkTarget;
    }

    /// <summary>mountinfo escapes space, tab, newline and backslash as octal.</summary>
    private static string Unescape(string s) =>
        System.Text.RegularExpressions.Regex.Replace(s, @"\\([0-7]{3})", m => ((char)Convert.ToInt32(m.Groups[1].Value, 8)).ToString(CultureInfo.InvariantCulture));
}
