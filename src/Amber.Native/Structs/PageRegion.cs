using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>struct page_region (linux/fs.h, 6.7+), 24 bytes: one run of pages PAGEMAP_SCAN reports.</summary>
[StructLayout(LayoutKind.Sequential)]
internal struct PageRegion
{
    public ulong start, end, categories;

    public const int Size = 24;
}
