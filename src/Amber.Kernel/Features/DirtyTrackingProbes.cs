using System.Runtime.InteropServices;
using Amber.Kernel.Memory;
using Amber.Native;

namespace Amber.Kernel.Features;

/// <summary>What incremental checkpoints find written pages with (docs/kernel.md §8).</summary>
internal static class DirtyTrackingProbes
{
    /// <summary>A userfaultfd of our own, never registered on anything, with the async write-protect API.</summary>
    public static unsafe (bool Present, string Detail) UserfaultfdWpAsync()
    {
        const int flags = Interop.O_CLOEXEC | Interop.O_NONBLOCK;
        int fd = Interop.Userfaultfd(flags | Interop.UFFD_USER_MODE_ONLY);
        if (fd < 0 && Marshal.GetLastPInvokeError() is Errnos.EINVAL or Errnos.EPERM)
            fd = Interop.Userfaultfd(flags);
        Errnos.Check(fd, "userfaultfd", "self");
        using var handle = new SafeFdHandle(fd);
        // The features DirtyTracker asks for, no more (WP_UNPOPULATED is not used: see there).
        var api = new UffdioApi { api = Interop.UFFD_API, features = Interop.UFFD_FEATURE_WP_ASYNC };
        Errnos.Check(Interop.Ioctl(fd, Interop.UFFDIO_API, &api), "ioctl(UFFDIO_API, WP_ASYNC)", "a userfaultfd");
        return (true, $"UFFDIO_API accepted WP_ASYNC (features 0x{api.features:x})");
    }

    /// <summary>PAGEMAP_SCAN over one present page of ours; ENOTTY or EINVAL where the kernel lacks it.</summary>
    public static unsafe (bool Present, string Detail) PagemapScan()
    {
        int fd;
        fixed (byte* path = NativeString.Utf8Z("/proc/self/pagemap"))
            fd = Errnos.Check(Interop.Open(path, Interop.O_RDONLY | Interop.O_CLOEXEC, 0), "open", "/proc/self/pagemap");
        using var pagemap = new SafeFdHandle(fd);
        nuint pageSize = Page.Size;
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

    public const string Tracking = "userfaultfd WP_ASYNC + PAGEMAP_SCAN";
    public const string Hashing = "page hashing (XXH3) against the parent";

    /// <summary>
    /// The method incremental checkpoints use here. Soft-dirty is not one of them: it is gone from
    /// recent kernels (this one included), and a tracker kept by the coordinator does its job.
    /// </summary>
    public static (bool Present, string Detail) Method(bool wpAsyncAndPagemapScan) =>
        (true, wpAsyncAndPagemapScan ? Tracking : Hashing);

    /// <summary>Whether PAGEMAP_SCAN lists pages here (6.7+); asked once per process.</summary>
    public static bool ScanWorks => LazyScanWorks.Value;

    private static readonly Lazy<bool> LazyScanWorks = new(() =>
    {
        try
        {
            return PagemapScan().Present;
        }
        catch (KernelCallException)
        {
            return false;
        }
    });

    /// <summary>Whether write tracking works here (both probes pass); asked once per process.</summary>
    public static bool TrackingWorks => LazyTrackingWorks.Value;

    private static readonly Lazy<bool> LazyTrackingWorks = new(() =>
    {
        try
        {
            return UserfaultfdWpAsync().Present && PagemapScan().Present;
        }
        catch (KernelCallException)
        {
            return false;
        }
    });
}
