using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct timespec, x86_64.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct Timespec
{
    public long tv_sec;
    public long tv_nsec;

    public static Timespec FromNs(long ns) => new() { tv_sec = Math.DivRem(ns, 1_000_000_000, out long rem) - (rem < 0 ? 1 : 0), tv_nsec = rem < 0 ? rem + 1_000_000_000 : rem };
}
