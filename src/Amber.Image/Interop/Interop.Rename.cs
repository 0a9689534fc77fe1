using System.Runtime.InteropServices;

namespace Amber.Image;

internal static partial class Interop
{
    internal static partial class Libc
    {
        // Unlike Directory.Move, rename(2) replaces an existing empty directory atomically.
        [LibraryImport(LibraryName, EntryPoint = "rename", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Rename(string oldPath, string newPath);
    }
}
