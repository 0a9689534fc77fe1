using Amber.Image.Schema;
using Amber.Kernel.Memory;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// The VmFlags of every mapping (what madvise, mlock and mseal set), from /proc/PID/smaps: the only
/// place the kernel shows them, and a slow one (it walks every page table for counts nobody here
/// needs). So it is read on a thread of its own while the process is stopped, overlapping with the
/// dump of its files and pages, and joined with the mappings just before the process may run
/// again. Started once nothing amber does changes the mappings any more (after the thread state's
/// scratch page is gone); tracking that is armed after the join does not show in it.
/// </summary>
public sealed class VmaFlagsReader
{
    private readonly int _pid;
    private readonly Task<List<SmapsEntry>> _read;

    private VmaFlagsReader(int pid)
    {
        _pid = pid;
        _read = Task.Factory.StartNew(() => Smaps.Read(pid), CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
    }

    public static VmaFlagsReader Start(int pid) => new(pid);

    /// <summary>Waits for the read without using it (a dump that failed).</summary>
    public void Abandon()
    {
        try
        {
            _read.Wait();
        }
        catch (AggregateException)
        {
        }
    }

    /// <summary>
    /// Gives every mapping of <paramref name="mm"/> its flags, and refuses mappings amber cannot
    /// make again (hugetlb, device memory, shadow stacks). The mappings seen in smaps must be those
    /// of maps: the process has not run since.
    /// </summary>
    /// <param name="pageMap">Where guard pages are found, in the mappings that have some ("gu").</param>
    public void AddTo(MmImage mm, PageMap pageMap)
    {
        var entries = _read.GetAwaiter().GetResult();
        if (!Matches(entries, mm))
        {
            // Should not happen (it was stopped all along): one more read, in the open.
            entries = Smaps.Read(_pid);
            if (!Matches(entries, mm))
                throw new CheckpointException($"process {_pid}: its mappings changed while it was stopped (/proc/{_pid}/smaps differs from maps)");
        }
        for (int i = 0; i < entries.Count; i++)
        {
            var vma = mm.Vmas[i];
            var flags = entries[i].Flags;
            Check(vma, flags);
            vma.VmFlags = (ulong)flags;
            if ((flags & VmFlags.GrowsDown) != 0)
                vma.GrowsDown = true;
            if ((flags & VmFlags.MaybeGuard) != 0)
                Guards(vma, pageMap);
        }
    }

    private static void Guards(Vma vma, PageMap pageMap)
    {
        var guards = new List<(ulong Start, ulong End)>();
        pageMap.Guards(vma.Start, vma.End, guards);
        foreach (var (start, end) in guards)
        {
            vma.Guards.Add(start);
            vma.Guards.Add(end);
        }
    }

    private static bool Matches(List<SmapsEntry> entries, MmImage mm) =>
        entries.Count == mm.Vmas.Count && entries.Select((e, i) => e.Map.Start == mm.Vmas[i].Start && e.Map.End == mm.Vmas[i].End).All(same => same);

    private void Check(Vma vma, VmFlags flags)
    {
        if (vma.Kind is VmaKind.VmaVdso or VmaKind.VmaVvar or VmaKind.VmaVvarVclock or VmaKind.VmaVsyscall)
            return; // the kernel's own, made by the kernel again
        string what = $"the mapping {vma.Start:x}-{vma.End:x} ({(vma.Name.Length == 0 ? "anonymous" : vma.Name)})";
        if ((flags & VmFlags.HugeTlb) != 0)
            throw new UnsupportedResourceException(_pid, what, "hugetlb memory (MAP_HUGETLB, hugetlbfs)");
        if ((flags & (VmFlags.Io | VmFlags.PfnMap | VmFlags.MixedMap)) != 0)
            throw new UnsupportedResourceException(_pid, what, "device memory (VM_IO/VM_PFNMAP/VM_MIXEDMAP)");
        if ((flags & VmFlags.ShadowStack) != 0)
            throw new UnsupportedResourceException(_pid, what, "a shadow stack");
        if ((flags & VmFlags.Sync) != 0)
            throw new UnsupportedResourceException(_pid, what, "a MAP_SYNC mapping of a DAX file");
    }
}
