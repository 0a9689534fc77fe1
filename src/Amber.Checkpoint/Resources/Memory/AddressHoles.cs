
namespace Amber.Checkpoint.Resources.Memory;

/// <summary>Finds address ranges free in every given layout (for the trampoline and the vdso's stopover).</summary>
public static class AddressHoles
{
    private const ulong Floor = 0x10000000;       // above low fixed mappings of non-PIE programs
    private const ulong Ceiling = 0x7ff000000000; // below the stack area
    private const ulong Guard = 0x10000;

    public static ulong Find(IEnumerable<(ulong Start, ulong End)> used, ulong size)
    {
        var sorted = used.Where(r => r.End > Floor).OrderBy(r => r.Start).ToList();
        ulong candidate = Floor;
        foreach (var (start, end) in sorted)
        {
            if (start >= candidate + size + Guard)
                return candidate;
            candidate = Math.Max(candidate, end + Guard);
        }
        if (candidate + size <= Ceiling)
            return candidate;
        throw new CheckpointException("no free address range for the restore trampoline");
    }
}
