using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct pollfd, for poll(2).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Pollfd
{
    public int fd;
    public short events;
    public short revents;

    public const int Size = 8;
}
