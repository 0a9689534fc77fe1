using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>Extended attributes of a path itself, never of what a symlink at its end points to (the l*xattr calls).</summary>
internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "lsetxattr", SetLastError = true)]
    internal static unsafe partial int Lsetxattr(byte* path, byte* name, byte* value, nuint size, int flags);

    /// <returns>The value's length, or -1 (ENODATA: no such attribute).</returns>
    [LibraryImport(Libc, EntryPoint = "lgetxattr", SetLastError = true)]
    internal static unsafe partial nint Lgetxattr(byte* path, byte* name, byte* value, nuint size);

    [LibraryImport(Libc, EntryPoint = "lremovexattr", SetLastError = true)]
    internal static unsafe partial int Lremovexattr(byte* path, byte* name);
}
