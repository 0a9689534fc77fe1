namespace Amber.Kernel.Memory;

/// <summary>
/// The page of this machine: the unit of mappings, protections, madvise and /proc/PID/pagemap
/// entries. Amber's own image format has a page of its own (Amber.Image's <c>ImageFormat.PageSize</c>),
/// which holds one of these: a checkpoint records the page size it was taken with, and a restore
/// refuses any other.
/// </summary>
public static class Page
{
    /// <summary>4 KiB, fixed by the x86-64 ABI (Amber runs there only): a constant, not sysconf(_SC_PAGESIZE).</summary>
    public const int Size = 4096;
}
