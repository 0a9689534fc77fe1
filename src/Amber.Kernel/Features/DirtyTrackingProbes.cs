using System.Runtime.InteropServices;
using Amber.Kernel.Memory;
using Amber.Native;

namespace Amber.Kernel.Features;

/// <summary>What incremental checkpoints find written pages with (DESIGN.md §3, KERNEL.md 4a/4b).</summary>
internal static class DirtyTrackingProbes
{
    private const ulong SoftDirtyBit = 1UL << 55;

    /// <summary>A userfaultfd of our own, never registered on anything, with the async write-protect API.</summary>
    public static unsafe (bool Present, string Detail) UserfaultfdWpAsync()
    {
        const int flags = Interop.O_CLOEXEC | Interop.O_NONBLOCK;
        int fd = Interop.Userfaultfd(flags | Interop.UFFD_USER_MODE_ONLY);
        if (fd < 0 && Marshal.GetLastPInvokeError() is Errnos.EINVAL or Errnos.EPERM)
            fd = Interop.Userfaultfd(flags);
        Errnos.Check(fd, "userfaultfd", "self");
        using var handle = new SafeFdHandle(fd);
        var api = new UffdioApi { api = Interop.UFFD_API, features = Interop.UFFD_FEATURE_WP_ASYNC | Interop.UFFD_FEATURE_WP_UNPOPULATED };
        Errnos.Check(Interop.Ioctl(fd, Interop.UFFDIO_API, &api), "ioctl(UFFDIO_API, WP_ASYNC|WP_UNPOPULATED)", "a userfaultfd");
        return (true, $"UFFDIO_API accepted WP_ASYNC|WP_UNPOPULATED (features 0x{api.features:x})");
    }

    /// <summary>PAGEMAP_SCAN over one present page of ours; ENOTTY or EINVAL where the kernel lacks it.</summary>
    public static unsafe (bool Present, string Detail) PagemapScan()
    {
        int fd;
        fixed (byte* path = NativeString.Utf8Z("/proc/self/pagemap"))
            fd = Errnos.Check(Interop.Open(path, Interop.O_RDONLY | Interop.O_CLOEXEC, 0), "open", "/proc/self/pagemap");
        using var pagemap = new SafeFdHandle(fd);
        nuint pageSize = (nuint)Environment.SystemPageSize;
        byte* page = (byte*)NativeMemory.AlignedAlloc(pageSize, pageSize);
        try
        {
            page[0] = 1;
            var region = default(PageRegion);
            var arg = new PmScanArg
            {
                size = PmScanArg.Size,
                start = (ulong)page,
                end = (ulong)page + pageSize,
                vec = (ulong)&region,
                vec_len = 1,
                category_mask = Interop.PAGE_IS_PRESENT,
                return_mask = Interop.PAGE_IS_PRESENT,
            };
            int regions = Errnos.Check(Interop.Ioctl(fd, Interop.PAGEMAP_SCAN, &arg), "ioctl(PAGEMAP_SCAN)", "/proc/self/pagemap");
            return (true, $"PAGE_IS_PRESENT query over one page returned {regions} region(s)");
        }
        finally
        {
            NativeMemory.AlignedFree(page);
        }
    }

    public static (bool Present, string Detail) Method(bool wpAsyncAndPagemapScan) =>
        wpAsyncAndPagemapScan ? (true, "userfaultfd WP_ASYNC + PAGEMAP_SCAN")
        : SoftDirty() ? (true, "soft-dirty")
        : (true, "page hashing (XXH3) fallback");

    /// <summary>
    /// Whether the kernel keeps soft-dirty bits (CONFIG_MEM_SOFT_DIRTY): a page written after
    /// clear_refs "4" shows bit 55 in pagemap. Clearing our own bits costs us a few write faults.
    /// </summary>
    internal static unsafe bool SoftDirty()
    {
        if (!File.Exists("/proc/self/clear_refs"))
            return false;
        nuint pageSize = (nuint)Environment.SystemPageSize;
        byte* page = (byte*)NativeMemory.AlignedAlloc(pageSize, pageSize);
        try
        {
            page[0] = 1;
            File.WriteAllText("/proc/self/clear_refs", "4");
            Volatile.Write(ref page[0], 2);
            using var pagemap = new PageMap(Environment.ProcessId);
            Span<ulong> entry = stackalloc ulong[1];
            pagemap.Read((ulong)page, entry);
            return (entry[0] & SoftDirtyBit) != 0;
        }
        finally
        {
            NativeMemory.AlignedFree(page);
        }
    }
}
