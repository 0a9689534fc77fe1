namespace Amber.Kernel.Proc;

/// <summary>The lines of /proc/PID/status Amber uses.</summary>
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
    ulong SigCaught);
