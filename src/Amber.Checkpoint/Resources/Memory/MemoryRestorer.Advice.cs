using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// The flags madvise, mlock2 and mseal left on the mappings (VmFlags), made again, each at the
/// moment it does no harm and costs least:
/// <list type="bullet">
/// <item>MADV_HUGEPAGE / NOHUGEPAGE before a private mapping is filled, so filling it faults in huge
/// pages where the advice (and the THP setting) allows, as the program's memory had them;</item>
/// <item>MADV_SEQUENTIAL / RANDOM, DONTDUMP, MERGEABLE and mlock/mlock2(MLOCK_ONFAULT) once it is
/// filled: mlock faults in every page, MLOCK_ONFAULT only locks those the fill brought;</item>
/// <item>MADV_DONTFORK and WIPEONFORK only once the process's children are cloned from it (a
/// DONTFORK mapping a child inherited before the advice would not reach it), and shared mappings'
/// advice then too: a child inherits a shared mapping with the flags it has at the clone, and has
/// its own made on it after;</item>
/// <item>mseal last of all: nothing may change a sealed mapping after it, not even the restore
/// (a child unmapping what it was not to inherit).</item>
/// <item>guard pages (MADV_GUARD_INSTALL) once the mapping is filled, before mlock (a locked mapping
/// refuses them); "gu" on a mapping without guard pages left, by one made and removed again before
/// it is filled.</item>
/// </list>
/// A flag the kernel refuses (MADV_MERGEABLE without KSM, hugepage advice without THP, mseal
/// before 6.10) is reported as a warning, never dropped silently. Flags amber's own write tracking
/// left (userfaultfd "um"/"uw"/"ui") are not the program's and not made again.
/// </summary>
public sealed partial class MemoryRestorer
{
    private static readonly (VmFlags Flag, int Advice)[] AfterFill =
    [
        (VmFlags.SequentialRead, Advice.Sequential), (VmFlags.RandomRead, Advice.Random),
        (VmFlags.DontDump, Advice.DontDump), (VmFlags.Mergeable, Advice.Mergeable),
    ];

    private void AdviseBeforeFill(Vma vma)
    {
        if (vma.Shared)
            return;
        AdviseHuge(vma);
        MarkGuardable(vma);
    }

    private void AdviseAfterFill(Vma vma)
    {
        if (!vma.Shared)
            AdviseFilled(vma);
    }

    /// <summary>
    /// What waits for the children to be cloned from this process: fork advice, shared mappings'
    /// advice (inherited ones too), then seals.
    /// </summary>
    public void AdviseAfterChildren()
    {
        var sealedRanges = new List<(ulong Start, ulong End)>();
        foreach (var vma in image.Mm.Vmas)
        {
            if (vma.Kind is VmaKind.VmaVdso or VmaKind.VmaVvar or VmaKind.VmaVvarVclock or VmaKind.VmaVsyscall)
                continue;
            var flags = (VmFlags)vma.VmFlags;
            if (vma.Shared)
            {
                AdviseHuge(vma);
                MarkGuardable(vma);
                AdviseFilled(vma);
            }
            if ((flags & VmFlags.DontCopy) != 0)
                Advise(vma, Advice.DontFork, "dc");
            if ((flags & VmFlags.WipeOnFork) != 0)
                Advise(vma, Advice.WipeOnFork, "wf");
            if ((flags & VmFlags.Sealed) == 0)
                continue;
            if (sealedRanges.Count > 0 && sealedRanges[^1].End == vma.Start)
                sealedRanges[^1] = (sealedRanges[^1].Start, vma.End);
            else
                sealedRanges.Add((vma.Start, vma.End));
        }
        batch.Flush();
        foreach (var (start, end) in sealedRanges)
        {
            try
            {
                calls.Mseal(start, end - start);
            }
            catch (KernelCallException e)
            {
                warnings.Add($"process {image.Pid}: the mappings {start:x}-{end:x} come back unsealed (VmFlags 'sl'): {e.Message}");
            }
        }
    }

    private void AdviseHuge(Vma vma)
    {
        var flags = (VmFlags)vma.VmFlags;
        if ((flags & VmFlags.HugePage) != 0)
            Advise(vma, Advice.HugePage, "hg");
        else if ((flags & VmFlags.NoHugePage) != 0)
            Advise(vma, Advice.NoHugePage, "nh");
    }

    /// <summary>
    /// "gu" stays on a mapping that had guard pages and has none left: one is made and removed
    /// again on its first page, before it is filled (making one drops what the page held).
    /// </summary>
    private void MarkGuardable(Vma vma)
    {
        if (((VmFlags)vma.VmFlags & VmFlags.MaybeGuard) == 0 || vma.Guards.Count > 0)
            return;
        // If the first fails, the second has nothing to remove.
        batch.Madvise(vma.Start, PageSize, Advice.GuardInstall, Warn(e => Lost(vma, "gu", e)));
        batch.Madvise(vma.Start, PageSize, Advice.GuardRemove, Warn(_ => { }));
    }

    /// <summary>Guard pages (before mlock, which they refuse), sequential/random/dontdump/mergeable advice, then mlock.</summary>
    private void AdviseFilled(Vma vma)
    {
        var flags = (VmFlags)vma.VmFlags;
        for (int i = 0; i + 1 < vma.Guards.Count; i += 2)
        {
            ulong start = vma.Guards[i], end = vma.Guards[i + 1];
            batch.Madvise(start, end - start, Advice.GuardInstall,
                Warn(e => warnings.Add($"process {image.Pid}: the guard pages {start:x}-{end:x} come back as plain memory: {e.Message}")));
        }
        foreach (var (flag, advice) in AfterFill)
        {
            if ((flags & flag) != 0)
                Advise(vma, advice, VmFlagNames.Format(flag));
        }
        if ((flags & VmFlags.Locked) == 0)
            return;
        bool onFault = (flags & VmFlags.LockOnFault) != 0;
        batch.Mlock2(vma.Start, vma.End - vma.Start, onFault, Warn(e => Lost(vma, onFault ? "lo lf" : "lo", e)));
    }

    private void Advise(Vma vma, int advice, string mnemonic) =>
        batch.Madvise(vma.Start, vma.End - vma.Start, advice, Warn(e => Lost(vma, mnemonic, e)));

    /// <summary>A call whose failure costs a flag, not the restore: said, and the batch goes on.</summary>
    private static SyscallBatch.Recovery Warn(Action<KernelCallException> said) => (_, e) =>
    {
        if (e == null)
            return false;
        said(e);
        return true;
    };

    private void Lost(Vma vma, string mnemonic, KernelCallException e) =>
        warnings.Add($"process {image.Pid}: the mapping {vma.Start:x}-{vma.End:x} ({(vma.Name.Length == 0 ? "anonymous" : vma.Name)}) " +
            $"comes back without VmFlags '{mnemonic}': {e.Message}");
}
