using System.Runtime.InteropServices;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

internal static partial class Interop
{
    internal static partial class Libc
    {
        internal const int AT_EMPTY_PATH = 0x1000;
        internal const uint STATX_TYPE = 0x1;
        internal const uint STATX_SIZE = 0x200;
        internal const int S_IFMT = 0xF000;
        internal const int S_IFREG = 0x8000;

        // struct statx has the same layout on every architecture, unlike struct stat.
        [StructLayout(LayoutKind.Explicit, Size = 256)]
        internal struct StatxBuffer
        {
            [FieldOffset(0)] internal uint Mask;
            [FieldOffset(28)] internal ushort Mode;
            [FieldOffset(40)] internal ulong Size;
        }

        [LibraryImport(LibraryName, EntryPoint = "statx", SetLastError = true, StringMarshalling = StringMarshalling.Utf8)]
        internal static partial int Statx(SafeFileHandle dirfd, string path, int flags, uint mask, out StatxBuffer buffer);
    }
}
