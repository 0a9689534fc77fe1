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
        long offset = (long)(address / (ulong)Environment.SystemPageSize) * sizeof(ulong);
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

    public void Dispose() => _fd.Dispose();
}
