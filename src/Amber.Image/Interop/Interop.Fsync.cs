using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

internal static partial class Interop
{
    internal static partial class Libc
    {
        [LibraryImport(LibraryName, EntryPoint = "fsync", SetLastError = true)]
        internal static partial int Fsync(SafeFileHandle fd);
    }
}
