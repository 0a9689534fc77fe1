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

    /// <param name="times">Two timespecs: access, modification.</param>
    [LibraryImport(Libc, EntryPoint = "utimensat", SetLastError = true)]
    internal static unsafe partial int Utimensat(int dirfd, byte* path, Timespec* times, int flags);

    [LibraryImport(Libc, EntryPoint = "mkfifo", SetLastError = true)]
    internal static unsafe partial int Mkfifo(byte* path, uint mode);

    [LibraryImport(Libc, EntryPoint = "link", SetLastError = true)]
    internal static unsafe partial int Link(byte* existing, byte* newPath);
}
