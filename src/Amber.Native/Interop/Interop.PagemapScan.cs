namespace Amber.Native;

internal static partial class Interop
{
    // linux/fs.h of 6.7+ (the installed 6.1 headers lack PAGEMAP_SCAN).
    internal const ulong PAGE_IS_WPALLOWED = 1UL << 0;
    internal const ulong PAGE_IS_WRITTEN = 1UL << 1;
    internal const ulong PAGE_IS_FILE = 1UL << 2;
    internal const ulong PAGE_IS_PRESENT = 1UL << 3;
    internal const ulong PAGE_IS_SWAPPED = 1UL << 4;
    internal const ulong PAGE_IS_PFNZERO = 1UL << 5;
    internal const ulong PAGE_IS_HUGE = 1UL << 6;
    internal const ulong PAGE_IS_SOFT_DIRTY = 1UL << 7;
    internal const ulong PAGE_IS_GUARD = 1UL << 8; // 6.14: a guard page (MADV_GUARD_INSTALL), reported swapped too

    internal const ulong PM_SCAN_WP_MATCHING = 1UL << 0;
    internal const ulong PM_SCAN_CHECK_WPASYNC = 1UL << 1;

    /// <summary>_IOWR('f', 16, struct pm_scan_arg) = 0xc0606610.</summary>
    internal static ulong PAGEMAP_SCAN => IoWR('f', 16, (uint)PmScanArg.Size);
}
