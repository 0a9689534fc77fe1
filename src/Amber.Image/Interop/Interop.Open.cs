using System.Runtime.InteropServices;

namespace Amber.Image;

internal static partial class Interop
{
    internal static partial class Libc
    {
        [LibraryImport(LibraryName, EntryPoint = "open", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Open(string path, int flags, int mode);
    }
}
