using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>Owner, permissions and times of a path (what a storage rollback sets back).</summary>
internal static partial class Interop
{
    internal const int AT_SYMLINK_NOFOLLOW = 0x100;

    [LibraryImport(Libc, EntryPoint = "fchownat", SetLastError = true)]
    internal static unsafe partial int Fchownat(int dirfd, byte* path, uint uid, uint gid, int flags);

    [LibraryImport(Libc, EntryPoint = "fchmodat", SetLastError = true)]
    internal static unsafe partial int Fchmodat(int dirfd, byte* path, uint mode, int flags);

    /// <summary>utimensat(2).</summary>
    /// <param name="dirfd">What a relative <paramref name="path"/> is relative to (AT_FDCWD).</param>
    /// <param name="path">NUL-terminated.</param>
    /// <param name="times">Two timespecs: access, modification.</param>
    /// <param name="flags">AT_SYMLINK_NOFOLLOW to set a symlink's own times.</param>
    [LibraryImport(Libc, EntryPoint = "utimensat", SetLastError = true)]
    internal static unsafe partial int Utimensat(int dirfd, byte* path, Timespec* times, int flags);

    [LibraryImport(Libc, EntryPoint = "mkfifo", SetLastError = true)]
    internal static unsafe partial int Mkfifo(byte* path, uint mode);

    [LibraryImport(Libc, EntryPoint = "link", SetLastError = true)]
    internal static unsafe partial int Link(byte* existing, byte* newPath);
}
