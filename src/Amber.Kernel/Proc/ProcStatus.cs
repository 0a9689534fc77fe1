namespace Amber.Kernel.Proc;

/// <summary>The lines of /proc/PID/status Amber uses.</summary>
/// <param name="Seccomp">The seccomp mode: 0 none, 1 strict, 2 filter (0 where the kernel has no seccomp and shows no line).</param>
public sealed record ProcStatus(
    string Name,
    char State,
    int Tgid,
    int ParentPid,
    int TracerPid,
    uint[] Uids,
    uint[] Gids,
    uint[] Groups,
    uint Umask,
    int Threads,
    ulong SigPending,
    ulong ShdPending,
    ulong SigBlocked,
    int[] NsPids,
    ulong[] Capabilities,
    ulong SigIgnored,
    ulong SigCaught,
    int Seccomp)
{
    /// <summary>The process group's id in each PID namespace the process is in, amber's first (0 where it has none: led from outside).</summary>
    public int[] NsPgids { get; init; } = [];

    /// <summary>The session's id in each PID namespace the process is in, as <see cref="NsPgids"/>.</summary>
    public int[] NsSids { get; init; } = [];

    /// <summary>The CPUs it may run on (Cpus_allowed), as sched_getaffinity gives them: bytes, the lowest CPUs first.</summary>
    public byte[] CpusAllowed { get; init; } = [];
}
