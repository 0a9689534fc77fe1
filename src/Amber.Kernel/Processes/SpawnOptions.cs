namespace Amber.Kernel.Processes;

/// <summary>What <see cref="Spawner"/> starts and with which standard files.</summary>
public sealed record SpawnOptions(string Path, IReadOnlyList<string> Arguments)
{
    public IReadOnlyList<string>? Environment { get; init; }

    public string? WorkingDirectory { get; init; }

    /// <summary>Files opened in the child as fd N (e.g. 0 = /dev/null, 1 = a log file), before exec.</summary>
    public IReadOnlyList<(int Fd, string Path, int Flags)> Opens { get; init; } = [];

    /// <summary>fds of ours (Source, which stays ours) placed at fd N in the child.</summary>
    public IReadOnlyList<(int Fd, int Source)> Inherits { get; init; } = [];

    public bool NewSession { get; init; }
}
