using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct uffdio_register (linux/userfaultfd.h), 32 bytes: a range (start, len), the mode, and the ioctls the kernel allows back.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioRegister
{
    public ulong start, len, mode, ioctls;

    public const int Size = 32;
}
