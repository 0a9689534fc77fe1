using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "mkdir", SetLastError = true)]
    internal static unsafe partial int Mkdir(byte* path, uint mode);
}
