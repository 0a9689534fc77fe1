using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>What stat(2) says of a path: enough to tell which file it is and whether it changed.</summary>
public readonly record struct FileStat(
    ulong Device, ulong Inode, uint Mode, long Size, long MtimeNs, ulong RDevice, uint Uid, uint Gid, ulong Links = 1, long AtimeNs = 0, long CtimeNs = 0)
{
    public bool IsRegular => (Mode & Interop.S_IFMT) == Interop.S_IFREG;
    public bool IsDirectory => (Mode & Interop.S_IFMT) == Interop.S_IFDIR;
    public bool IsCharDevice => (Mode & Interop.S_IFMT) == Interop.S_IFCHR;
    public bool IsFifo => (Mode & Interop.S_IFMT) == Interop.S_IFIFO;
    public bool IsSocket => (Mode & Interop.S_IFMT) == Interop.S_IFSOCK;
    public bool IsSymlink => (Mode & Interop.S_IFMT) == Interop.S_IFLNK;

    /// <summary>The permission bits, set-id and sticky bits included.</summary>
    public uint Permissions => Mode & 0xFFF;

    /// <summary>lstat(): about the link itself, not what it points to.</summary>
    public static unsafe bool TryGetNoFollow(string path, out FileStat stat)
    {
        var p = NativeString.Utf8Z(path);
        Stat st;
        int rv;
        fixed (byte* pp = p)
            rv = Interop.Lstat(pp, &st);
        stat = rv < 0 ? default : From(st);
        return rv == 0;
    }

    internal static FileStat From(in Stat st) =>
        new(st.st_dev, st.st_ino, st.st_mode, st.st_size, st.st_mtime * 1_000_000_000 + st.st_mtime_nsec, st.st_rdev, st.st_uid, st.st_gid,
            st.st_nlink, st.st_atime * 1_000_000_000 + st.st_atime_nsec, st.st_ctime * 1_000_000_000 + st.st_ctime_nsec);

    /// <summary>stat() following links; false if the path does not exist.</summary>
    public static unsafe bool TryGet(string path, out FileStat stat)
    {
        var p = NativeString.Utf8Z(path);
        Stat st;
        int rv;
        fixed (byte* pp = p)
            rv = Interop.Stat(pp, &st);
        stat = rv < 0 ? default : From(st);
        return rv == 0;
    }
}
