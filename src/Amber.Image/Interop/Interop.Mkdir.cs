using System.Runtime.InteropServices;

namespace Amber.Image;

internal static partial class Interop
{
    internal static partial class Libc
    {
        [LibraryImport(LibraryName, EntryPoint = "mkdir", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Mkdir(string path, uint mode);
    }
}
