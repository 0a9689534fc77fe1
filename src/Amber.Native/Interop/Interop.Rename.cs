using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    // Unlike Directory.Move, rename(2) replaces an existing empty directory atomically.
    [LibraryImport(Libc, EntryPoint = "rename", SetLastError = true)]
    internal static unsafe partial int Rename(byte* oldPath, byte* newPath);

    internal const uint RENAME_EXCHANGE = 2;

    /// <summary>renameat2: with RENAME_EXCHANGE, two paths swap places atomically.</summary>
    [LibraryImport(Libc, EntryPoint = "renameat2", SetLastError = true)]
    internal static unsafe partial int Renameat2(int oldDirFd, byte* oldPath, int newDirFd, byte* newPath, uint flags);
}
