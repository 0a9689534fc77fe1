using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>An owned file descriptor (a /proc file, a pidfd, a memfd, a userfaultfd...).</summary>
internal sealed class SafeFdHandle : SafeHandle
{
    public SafeFdHandle(int fd)
        : base(-1, ownsHandle: true) => SetHandle(fd);

    public override bool IsInvalid => handle == -1;

    public int Fd => (int)handle;

    protected override bool ReleaseHandle() => Interop.Close((int)handle) == 0;
}
