using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Amber.Native;

internal static partial class Interop
{
    // Takes the SafeFileHandle the image store holds (passed pointer-sized; the x86_64 calling
    // convention reads an int argument from the low 32 bits). Works on directories opened O_RDONLY.
    [LibraryImport(Libc, EntryPoint = "fsync", SetLastError = true)]
    internal static partial int Fsync(SafeFileHandle fd);
}
