using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>The kernel's struct sigaction for rt_sigaction(2) on x86_64 (not glibc's).</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct KernelSigaction
{
    public ulong handler, flags, restorer, mask;

    public const int Size = 32;
}
