using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    // Unlike Directory.Move, rename(2) replaces an existing empty directory atomically.
    [LibraryImport(Libc, EntryPoint = "rename", SetLastError = true)]
    internal static unsafe partial int Rename(byte* oldPath, byte* newPath);
}
