namespace Amber.Kernel.Proc;

/// <summary>
/// The flags of a mapping as /proc/PID/smaps shows them on its "VmFlags:" line (two-letter
/// mnemonics, fs/proc/task_mmu.c). The bit values are Amber's own, not the kernel's (which vary with
/// its version and configuration): they are saved in images, so they never change.
/// </summary>
[Flags]
public enum VmFlags : ulong
{
    None = 0,
    Read = 1UL << 0,            // rd
    Write = 1UL << 1,           // wr
    Exec = 1UL << 2,            // ex
    Shared = 1UL << 3,          // sh
    MayRead = 1UL << 4,         // mr
    MayWrite = 1UL << 5,        // mw
    MayExec = 1UL << 6,         // me
    MayShare = 1UL << 7,        // ms
    GrowsDown = 1UL << 8,       // gd
    PfnMap = 1UL << 9,          // pf
    Locked = 1UL << 10,         // lo: mlock
    Io = 1UL << 11,             // io
    SequentialRead = 1UL << 12, // sr: MADV_SEQUENTIAL
    RandomRead = 1UL << 13,     // rr: MADV_RANDOM
    DontCopy = 1UL << 14,       // dc: MADV_DONTFORK
    DontExpand = 1UL << 15,     // de
    LockOnFault = 1UL << 16,    // lf: mlock2(MLOCK_ONFAULT)
    Account = 1UL << 17,        // ac
    NoReserve = 1UL << 18,      // nr: MAP_NORESERVE
    HugeTlb = 1UL << 19,        // ht
    Sync = 1UL << 20,           // sf: MAP_SYNC
    Arch1 = 1UL << 21,          // ar
    WipeOnFork = 1UL << 22,     // wf: MADV_WIPEONFORK
    DontDump = 1UL << 23,       // dd: MADV_DONTDUMP
    SoftDirty = 1UL << 24,      // sd
    MixedMap = 1UL << 25,       // mm
    HugePage = 1UL << 26,       // hg: MADV_HUGEPAGE
    NoHugePage = 1UL << 27,     // nh: MADV_NOHUGEPAGE
    Mergeable = 1UL << 28,      // mg: MADV_MERGEABLE
    UffdMissing = 1UL << 29,    // um
    UffdWp = 1UL << 30,         // uw
    UffdMinor = 1UL << 31,      // ui
    ShadowStack = 1UL << 32,    // ss
    Droppable = 1UL << 33,      // dp: MAP_DROPPABLE
    Sealed = 1UL << 34,         // sl: mseal
    MaybeGuard = 1UL << 35,     // gu: MADV_GUARD_INSTALL was used on it
    MemoryTag = 1UL << 36,      // mt (arm64)
    BranchTarget = 1UL << 37,   // bt (arm64)
    Unknown = 1UL << 63,        // a mnemonic this parser does not know
}

public static class VmFlagNames
{
    private static readonly (string Name, VmFlags Flag)[] Names =
    [
        ("rd", VmFlags.Read), ("wr", VmFlags.Write), ("ex", VmFlags.Exec), ("sh", VmFlags.Shared),
        ("mr", VmFlags.MayRead), ("mw", VmFlags.MayWrite), ("me", VmFlags.MayExec), ("ms", VmFlags.MayShare),
        ("gd", VmFlags.GrowsDown), ("pf", VmFlags.PfnMap), ("lo", VmFlags.Locked), ("io", VmFlags.Io),
        ("sr", VmFlags.SequentialRead), ("rr", VmFlags.RandomRead), ("dc", VmFlags.DontCopy), ("de", VmFlags.DontExpand),
        ("lf", VmFlags.LockOnFault), ("ac", VmFlags.Account), ("nr", VmFlags.NoReserve), ("ht", VmFlags.HugeTlb),
        ("sf", VmFlags.Sync), ("ar", VmFlags.Arch1), ("wf", VmFlags.WipeOnFork), ("dd", VmFlags.DontDump),
        ("sd", VmFlags.SoftDirty), ("mm", VmFlags.MixedMap), ("hg", VmFlags.HugePage), ("nh", VmFlags.NoHugePage),
        ("mg", VmFlags.Mergeable), ("um", VmFlags.UffdMissing), ("uw", VmFlags.UffdWp), ("ui", VmFlags.UffdMinor),
        ("ss", VmFlags.ShadowStack), ("dp", VmFlags.Droppable), ("sl", VmFlags.Sealed), ("gu", VmFlags.MaybeGuard),
        ("mt", VmFlags.MemoryTag), ("bt", VmFlags.BranchTarget),
    ];

    /// <summary>The flags of a VmFlags line's value ("rd wr mr mw me ac "), ASCII.</summary>
    public static VmFlags Parse(ReadOnlySpan<byte> text)
    {
        var flags = VmFlags.None;
        foreach (var range in text.Split((byte)' '))
        {
            var token = text[range];
            if (token.Length == 0)
                continue;
            flags |= token.Length == 2 ? Of((char)token[0], (char)token[1]) : VmFlags.Unknown;
        }
        return flags;
    }

    public static VmFlags Parse(string text) => Parse(System.Text.Encoding.ASCII.GetBytes(text));

    private static VmFlags Of(char a, char b)
    {
        foreach (var (name, flag) in Names)
        {
            if (name[0] == a && name[1] == b)
                return flag;
        }
        return VmFlags.Unknown;
    }

    /// <summary>The mnemonics, in smaps's order ("dc ac").</summary>
    public static string Format(VmFlags flags) =>
        string.Join(' ', Names.Where(n => (flags & n.Flag) != 0).Select(n => n.Name).Concat((flags & VmFlags.Unknown) != 0 ? ["??"] : []));
}
