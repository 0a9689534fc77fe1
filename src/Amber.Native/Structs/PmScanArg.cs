using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct pm_scan_arg (linux/fs.h, 6.7+), 96 bytes: the argument of PAGEMAP_SCAN.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PmScanArg
{
    public ulong size, flags, start, end, walk_end, vec, vec_len, max_pages;
    public ulong category_inverted, category_mask, category_anyof_mask, return_mask;

    public const int Size = 96;
}
