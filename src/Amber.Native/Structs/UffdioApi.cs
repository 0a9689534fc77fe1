using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct uffdio_api (linux/userfaultfd.h), 24 bytes.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct UffdioApi
{
    public ulong api, features, ioctls;

    public const int Size = 24;
}
