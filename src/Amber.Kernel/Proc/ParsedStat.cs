namespace Amber.Kernel.Proc;

/// <summary>
/// The fields of /proc/PID/stat Amber uses, numbered as in proc(5). Field 2 (comm) is in parentheses
/// and may itself contain spaces and ')', so parsing starts after the last ')'.
/// </summary>
public readonly record struct ParsedStat(
    int Pid,                 // 1
    char State,              // 3
    int ParentPid,           // 4
    int ProcessGroup,        // 5
    int Session,             // 6
    long NumThreads,         // 20
    ulong StartTime,         // 22
    ulong StartCode,         // 26
    ulong EndCode,           // 27
    ulong StartStack,        // 28
    ulong StartData,         // 45
    ulong EndData,           // 46
    ulong StartBrk,          // 47
    ulong ArgStart,          // 48
    ulong ArgEnd,            // 49
    ulong EnvStart,          // 50
    ulong EnvEnd,            // 51
    int ExitCode)            // 52: the waitpid status of a zombie
{
    /// <summary>PF_EXITING in <see cref="Flags"/>: the process is on its way out (its threads exit; ptrace refuses it).</summary>
    public const uint Exiting = 0x4;

    /// <summary>Field 9: the kernel's PF_* flags of the process's main thread.</summary>
    public uint Flags { get; init; }

    /// <summary>Field 19: the nice value, -20..19.</summary>
    public int Nice { get; init; }

    /// <summary>Field 40: the real-time priority (0 for the policies that are not).</summary>
    public int RtPriority { get; init; }

    /// <summary>Field 41: the scheduling policy (SCHED_*, without SCHED_RESET_ON_FORK).</summary>
    public int Policy { get; init; }

    /// <summary>A zombie, dead, or on its way out (<see cref="Exiting"/>): ptrace refuses it, and it will not run again.</summary>
    public bool Ending => State is 'Z' or 'X' || (Flags & Exiting) != 0;
}
