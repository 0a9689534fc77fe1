using Amber.Kernel.Files;

namespace Amber.Kernel.Processes;

/// <summary>What <see cref="Spawner"/> starts and with which standard files.</summary>
public sealed record SpawnOptions(string Path, IReadOnlyList<string> Arguments)
{
    public IReadOnlyList<string>? Environment { get; init; }

    public string? WorkingDirectory { get; init; }

    /// <summary>
    /// Files opened in the child as fd N (e.g. 0 = /dev/null, 1 = a log file), before exec, with
    /// <see cref="OpenFlags"/> (<see cref="Read"/>, <see cref="Append"/>, <see cref="Overwrite"/>); one
    /// created is given mode 0666 less the umask, as a shell gives it.
    /// </summary>
    public IReadOnlyList<(int Fd, string Path, int Flags)> Opens { get; init; } = [];

    /// <summary>Flags of <see cref="Opens"/>: a shell's <c>&lt;</c>.</summary>
    public const int Read = OpenFlags.ReadOnly;

    /// <summary>Flags of <see cref="Opens"/>: a shell's <c>&gt;&gt;</c> (O_WRONLY | O_CREAT | O_APPEND).</summary>
    public const int Append = OpenFlags.WriteOnly | OpenFlags.Create | OpenFlags.Append;

    /// <summary>Flags of <see cref="Opens"/>: a shell's <c>&gt;</c> (O_WRONLY | O_CREAT | O_TRUNC).</summary>
    public const int Overwrite = OpenFlags.WriteOnly | OpenFlags.Create | OpenFlags.Truncate;

    /// <summary>fds of ours (Source, which stays ours) placed at fd N in the child.</summary>
    public IReadOnlyList<(int Fd, int Source)> Inherits { get; init; } = [];

    public bool NewSession { get; init; }

    /// <summary>Born as PID 1 of a new PID namespace (which ends with it).</summary>
    public bool NewPidNamespace { get; init; }

    /// <summary>Born in the PID namespace of this process (0: amber's own).</summary>
    public int PidNamespaceOf { get; init; }

    /// <summary>
    /// Run first on a thread of the spawn's own, which ends after it: what it does to that thread's
    /// namespaces (a network namespace made and set up) the program is born in, and no other thread of
    /// amber's sees.
    /// </summary>
    public Action? Prepare { get; init; }
}
