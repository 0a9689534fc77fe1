using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "accept4", SetLastError = true)]
    internal static partial int Accept4(int fd, nint address, nint length, int flags);
}
