using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Memory;

/// <summary>
/// /proc/PID/pagemap: one 64-bit entry per virtual page. Bit 63 present, 62 swapped, 61 file-page or
/// shared-anon, 57 uffd-wp. Entries are read in batches into a caller-supplied span.
/// </summary>
public sealed class PageMap : IDisposable
{
    public const ulong Present = 1UL << 63;
    public const ulong Swapped = 1UL << 62;
    public const ulong FileOrShared = 1UL << 61;
    public const ulong ExclusiveMapped = 1UL << 56;

    /// <summary>A guard page (MADV_GUARD_INSTALL; 6.14): no page, a marker that faults. Swapped is set too.</summary>
    public const ulong GuardRegion = 1UL << 58;

    private readonly SafeFdHandle _fd;

    public PageMap(int pid)
    {
        Pid = pid;
        _fd = Proc.ProcFile.Open(pid, "pagemap", write: false);
    }

    public int Pid { get; }

    /// <summary>Reads the entries of entries.Length pages starting at the page containing <paramref name="address"/>.</summary>
    public unsafe void Read(ulong address, Span<ulong> entries)
    {
        long offset = (long)(address / Page.Size) * sizeof(ulong);
        fixed (ulong* p = entries)
        {
            long bytes = (long)entries.Length * sizeof(ulong);
            long done = 0;
            while (done < bytes)
            {
                nint n = Interop.Pread(_fd.Fd, (byte*)p + done, (nuint)(bytes - done), offset + done);
                if (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR)
                    continue;
                if (n <= 0)
                    throw new KernelCallException("pread /proc/PID/pagemap", $"process {Pid} at 0x{address:x}", n == 0 ? Errnos.EIO : Marshal.GetLastPInvokeError());
                done += n;
            }
        }
    }

    /// <summary>Whether <see cref="Scan"/> works here (PAGEMAP_SCAN, 6.7+); where not, entries are <see cref="Read"/> one by one.</summary>
    public static bool CanScan => Features.DirtyTrackingProbes.ScanWorks;

    /// <summary>
    /// Scan categories: present, swapped, (present) not anonymous — a file page or shared memory — and
    /// the shared zero page (read, never written).
    /// </summary>
    public const ulong ScanPresent = Interop.PAGE_IS_PRESENT, ScanSwapped = Interop.PAGE_IS_SWAPPED, ScanFile = Interop.PAGE_IS_FILE,
        ScanZeroPage = Interop.PAGE_IS_PFNZERO;

    /// <summary>
    /// The scan category of guard pages (which it reports swapped as well), where the kernel knows it
    /// (6.14+; guard pages came in 6.13); 0 where it does not (it refuses the bit with EINVAL).
    /// </summary>
    public static ulong ScanGuard => LazyScanGuard.Value;

    private static readonly Lazy<ulong> LazyScanGuard = new(() => CanScan && ScanKnows(Interop.PAGE_IS_GUARD) ? Interop.PAGE_IS_GUARD : 0);

    private static unsafe bool ScanKnows(ulong category)
    {
        using var own = Proc.ProcFile.Open(Environment.ProcessId, "pagemap", write: false);
        ulong page = 0;
        var region = default(PageRegion);
        var arg = new PmScanArg
        {
            size = PmScanArg.Size, start = (ulong)&page & ~(Page.Size - 1UL), end = ((ulong)&page & ~(Page.Size - 1UL)) + Page.Size, vec = (ulong)&region, vec_len = 1,
            category_anyof_mask = Interop.PAGE_IS_PRESENT | category, return_mask = Interop.PAGE_IS_PRESENT | category,
        };
        return Interop.Ioctl(own.Fd, Interop.PAGEMAP_SCAN, &arg) >= 0;
    }

    /// <summary>The guard pages of [start, end), as ranges appended to <paramref name="into"/> in address order (none where <see cref="ScanGuard"/> is 0).</summary>
    public unsafe void Guards(ulong start, ulong end, List<(ulong Start, ulong End)> into)
    {
        if (ScanGuard == 0)
            return;
        const int vectorLength = 256;
        var regions = stackalloc PageRegion[vectorLength];
        for (ulong at = start; at < end;)
        {
            var arg = new PmScanArg
            {
                size = PmScanArg.Size, start = at, end = end, vec = (ulong)regions, vec_len = vectorLength,
                category_mask = ScanGuard, return_mask = ScanGuard,
            };
            int n = Interop.Ioctl(_fd.Fd, Interop.PAGEMAP_SCAN, &arg);
            if (n < 0)
                Errnos.Throw("ioctl(PAGEMAP_SCAN, PAGE_IS_GUARD)", $"{at:x}-{end:x} of process {Pid}");
            for (int i = 0; i < n; i++)
                into.Add((regions[i].start, regions[i].end));
            if (n < vectorLength)
                break;
            ulong next = Math.Max(arg.walk_end, regions[n - 1].end);
            if (next <= at)
                break;
            at = next;
        }
    }

    /// <summary>
    /// The present or swapped pages of [start, end), as ranges with their categories (<see cref="ScanPresent"/>,
    /// <see cref="ScanSwapped"/>, <see cref="ScanFile"/>, <see cref="ScanZeroPage"/>, <see cref="ScanGuard"/>), appended to <paramref name="into"/> in address
    /// order: one PAGEMAP_SCAN where reading the entries of a 2 GiB mapping takes 4 MiB of them.
    /// </summary>
    public unsafe void Scan(ulong start, ulong end, List<(ulong Start, ulong End, ulong Categories)> into, bool fileCategory = true)
    {
        ulong returned = Interop.PAGE_IS_PRESENT | Interop.PAGE_IS_SWAPPED | Interop.PAGE_IS_PFNZERO | (fileCategory ? Interop.PAGE_IS_FILE : 0) | ScanGuard;
        const int vectorLength = 1024;
        var regions = stackalloc PageRegion[vectorLength];
        for (ulong at = start; at < end;)
        {
            var arg = new PmScanArg
            {
                size = PmScanArg.Size, start = at, end = end, vec = (ulong)regions, vec_len = vectorLength,
                category_anyof_mask = Interop.PAGE_IS_PRESENT | Interop.PAGE_IS_SWAPPED,
                return_mask = returned,
            };
            int n = Interop.Ioctl(_fd.Fd, Interop.PAGEMAP_SCAN, &arg);
            if (n < 0)
                Errnos.Throw("ioctl(PAGEMAP_SCAN, PAGE_IS_PRESENT)", $"{at:x}-{end:x} of process {Pid}");
            for (int i = 0; i < n; i++)
                into.Add((regions[i].start, regions[i].end, regions[i].categories));
            // Fewer regions than room means the walk is done (docs/kernel.md, pitfall 10: walk_end may lag).
            if (n < vectorLength)
                break;
            // A full vector: go on after the last region listed (never back over it).
            ulong next = Math.Max(arg.walk_end, regions[n - 1].end);
            if (next <= at)
                break;
            at = next;
        }
    }

    public void Dispose() => _fd.Dispose();
}
