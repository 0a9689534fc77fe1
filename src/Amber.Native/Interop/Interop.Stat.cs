using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const uint S_IFMT = 0xF000;
    internal const uint S_IFREG = 0x8000;
    internal const uint S_IFDIR = 0x4000;
    internal const uint S_IFCHR = 0x2000;
    internal const uint S_IFIFO = 0x1000;
    internal const uint S_IFSOCK = 0xC000;
    internal const uint S_IFLNK = 0xA000;

    [LibraryImport(Libc, EntryPoint = "stat", SetLastError = true)]
    internal static unsafe partial int Stat(byte* path, Stat* buffer);

    [LibraryImport(Libc, EntryPoint = "lstat", SetLastError = true)]
    internal static unsafe partial int Lstat(byte* path, Stat* buffer);

    [LibraryImport(Libc, EntryPoint = "fstat", SetLastError = true)]
    internal static unsafe partial int FStat(int fd, Stat* buffer);
}
