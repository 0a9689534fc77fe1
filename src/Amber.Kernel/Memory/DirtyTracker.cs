using System.Buffers;
using System.Runtime.InteropServices;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;
using Amber.Native;

namespace Amber.Kernel.Memory;

/// <summary>
/// Kernel write tracking of another process's memory without soft-dirty (docs/kernel.md §8): a
/// userfaultfd made inside the process (injected), kept by us through a copy while the process's own
/// descriptor is closed again (its fd table is as it was), set to asynchronous write-protection: a
/// write to a protected page is let through by the kernel at once and leaves the page "written".
/// PAGEMAP_SCAN on /proc/PID/pagemap then lists the pages written since and protects them again.
/// The tracking lasts as long as some process holds the userfaultfd (the coordinator, between
/// checkpoints); the program never sees a fault.
/// </summary>
public sealed class DirtyTracker : IDisposable
{
    private const int VectorLength = 4096;
    private readonly HeldFile _uffd;

    private DirtyTracker(int pid, HeldFile uffd)
    {
        Pid = pid;
        _uffd = uffd;
    }

    public int Pid { get; }

    /// <summary>Whether this kernel tracks writes this way; where it does not, incremental checkpoints compare page hashes.</summary>
    public static bool Works => Features.DirtyTrackingProbes.TrackingWorks;

    /// <summary>The userfaultfd, to hand to whoever keeps the tracking alive.</summary>
    public HeldFile Handle => _uffd;

    /// <summary>Makes a tracker in a stopped process: userfaultfd made there, copied here, closed there.</summary>
    public static DirtyTracker Create(int pid, RemoteCalls calls) =>
        // Not WP_UNPOPULATED: it would fill the page tables of every untouched page with markers (a
        // .NET process reserves hundreds of GiB). A first write to an untouched page faults it in
        // unprotected anyway, which reads as written.
        new(pid, RemoteUserfaultfd.Make(pid, calls, kernelFaults: false, Interop.UFFD_FEATURE_WP_ASYNC, "WP_ASYNC"));

    /// <summary>A tracker kept since the last checkpoint (its userfaultfd handed back).</summary>
    public static DirtyTracker Adopt(int pid, HeldFile uffd) => new(pid, uffd);

    /// <summary>Tracks writes to [start, end) from now on: registered for write-protection, then every page protected.</summary>
    public unsafe void Track(ulong start, ulong end)
    {
        var register = new UffdioRegister { start = start, len = end - start, mode = Interop.UFFDIO_REGISTER_MODE_WP };
        if (Interop.Ioctl(_uffd.Fd, Interop.UFFDIO_REGISTER, &register) < 0)
            Errnos.Throw("ioctl(UFFDIO_REGISTER, WP)", $"{start:x}-{end:x} of process {Pid}");
        TakeWritten(start, end); // the first scan of a range protects all of it
    }

    /// <summary>
    /// The pages of [start, end) written since they were last protected, as ranges, and protected
    /// again (PAGEMAP_SCAN with PM_SCAN_WP_MATCHING) — an atomic read-and-reset, done while the
    /// process is stopped. A range holding memory that is not registered any more (unmapped and
    /// mapped again, moved by mremap) reads as all written: the kernel would skip it in silence
    /// (docs/kernel.md, pitfall 10), so PM_SCAN_CHECK_WPASYNC makes it say so.
    /// </summary>
    public List<(ulong Start, ulong End)> TakeWritten(ulong start, ulong end)
    {
        var written = new List<(ulong, ulong)>();
        // Pooled: the scan under the freeze then reuses the vector of the scan before it, instead of
        // faulting in a new one (docs/kernel.md §13).
        var regions = ArrayPool<PageRegion>.Shared.Rent(VectorLength);
        try
        {
            // A scan that stopped at unregistered memory has protected again, and reported, the pages
            // written before it: those stay written, whatever the scan mapping by mapping then says.
            return Scan(start, end, regions, written) ? written : [.. written, .. ByMapping(start, end)];
        }
        finally
        {
            ArrayPool<PageRegion>.Shared.Return(regions);
        }
    }

    /// <returns>
    /// False when [start, end) holds memory that is not registered (EPERM): the kernel stops there,
    /// having reported (and protected again) the pages written in the memory walked before it, which
    /// are in <paramref name="written"/> too — the vector is kept zeroed to tell them from old entries.
    /// </returns>
    private unsafe bool Scan(ulong start, ulong end, PageRegion[] regions, List<(ulong, ulong)> written)
    {
        using var pagemap = Proc.ProcFile.Open(Pid, "pagemap", write: false);
        Array.Clear(regions, 0, VectorLength);
        fixed (PageRegion* vec = regions)
        {
            for (ulong at = start; at < end;)
            {
                var arg = new PmScanArg
                {
                    size = PmScanArg.Size, flags = Interop.PM_SCAN_WP_MATCHING | Interop.PM_SCAN_CHECK_WPASYNC, start = at, end = end, vec = (ulong)vec, vec_len = VectorLength,
                    // Written, and no guard page: one reads as written (a marker, never write-protected), and holds nothing to read.
                    category_inverted = PageMap.ScanGuard, category_mask = Interop.PAGE_IS_WRITTEN | PageMap.ScanGuard, return_mask = Interop.PAGE_IS_WRITTEN,
                };
                int n = Interop.Ioctl(pagemap.Fd, Interop.PAGEMAP_SCAN, &arg);
                bool unregistered = n < 0 && Marshal.GetLastPInvokeError() == Errnos.EPERM;
                if (n < 0 && !unregistered)
                    Errnos.Throw("ioctl(PAGEMAP_SCAN, PAGE_IS_WRITTEN)", $"{at:x}-{end:x} of process {Pid}");
                int reported = unregistered ? FilledEntries(regions) : n;
                for (int i = 0; i < reported; i++)
                {
                    if (written.Count > 0 && written[^1].Item2 == regions[i].start)
                        written[^1] = (written[^1].Item1, regions[i].end);
                    else
                        written.Add((regions[i].start, regions[i].end));
                }
                Array.Clear(regions, 0, reported);
                if (unregistered)
                    return false;
                // A full vector may have stopped early; fewer regions than room means the walk is done (docs/kernel.md, pitfall 10).
                if (n < VectorLength || arg.walk_end <= at)
                    break;
                at = arg.walk_end;
            }
        }
        return true;
    }

    /// <summary>How many entries of a vector zeroed before the scan the kernel filled.</summary>
    private static int FilledEntries(PageRegion[] regions)
    {
        int filled = 0;
        while (filled < VectorLength && regions[filled].end != 0)
            filled++;
        return filled;
    }

    /// <summary>
    /// [start, end) holds memory that is not registered: scanned mapping by mapping instead, so that
    /// only what was mapped again since reads as all written (a heap next to a mapping replaced each
    /// time is still tracked).
    /// </summary>
    private List<(ulong Start, ulong End)> ByMapping(ulong start, ulong end)
    {
        var mappings = Proc.ProcFs.ReadMaps(Pid).Where(m => m.Start < end && m.End > start).ToList();
        if (mappings.Count <= 1)
            return [(start, end)];
        var written = new List<(ulong, ulong)>();
        foreach (var m in mappings)
            written.AddRange(TakeWritten(Math.Max(start, m.Start), Math.Min(end, m.End)));
        return written;
    }

    public void Dispose() => _uffd.Dispose();
}
