using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "ioctl", SetLastError = true)]
    internal static unsafe partial int Ioctl(int fd, ulong request, void* arg);

    /// <summary>An ioctl whose argument is a pointer to one int.</summary>
    [LibraryImport(Libc, EntryPoint = "ioctl", SetLastError = true)]
    internal static partial int Ioctl(int fd, ulong request, ref int arg);

    /// <summary>_IOWR(type, nr, size) of asm-generic/ioctl.h: direction read|write (3) in bits 30-31, size in 16-29.</summary>
    internal static ulong IoWR(uint type, uint nr, uint size) => (3UL << 30) | ((ulong)size << 16) | ((ulong)type << 8) | nr;

    /// <summary>_IOR(type, nr, size): direction read (2).</summary>
    internal static ulong IoR(uint type, uint nr, uint size) => (2UL << 30) | ((ulong)size << 16) | ((ulong)type << 8) | nr;
}
