using System.Runtime.InteropServices;

namespace Amber.Native;

[StructLayout(LayoutKind.Sequential)]
internal struct Iovec
{
    public nint iov_base;
    public nuint iov_len;
}
