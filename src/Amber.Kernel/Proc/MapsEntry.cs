namespace Amber.Kernel.Proc;

/// <summary>One line of /proc/PID/maps.</summary>
public readonly record struct MapsEntry(
    ulong Start,
    ulong End,
    bool Read,
    bool Write,
    bool Execute,
    bool Shared,
    ulong Offset,
    uint DevMajor,
    uint DevMinor,
    ulong Inode,
    string Path)
{
    public ulong Length => End - Start;

    public bool IsDeleted => Path.EndsWith(" (deleted)", StringComparison.Ordinal);

    /// <summary>A real file (inode ≠ 0 and an absolute path), as opposed to [heap], [stack], anonymous memory.</summary>
    public bool IsFileBacked => Inode != 0 && Path.StartsWith('/');

    public int Protection => (Read ? 1 : 0) | (Write ? 2 : 0) | (Execute ? 4 : 0);

    public override string ToString() =>
        $"{Start:x}-{End:x} {(Read ? 'r' : '-')}{(Write ? 'w' : '-')}{(Execute ? 'x' : '-')}{(Shared ? 's' : 'p')} {Offset:x8} {Path}";
}
