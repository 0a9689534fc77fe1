namespace Amber.Checkpoint;

/// <summary>The process holds something Amber cannot save yet; nothing was changed in it.</summary>
public sealed class UnsupportedResourceException(int pid, string resource, string kind, string? why = null)
    : CheckpointException($"process {pid}: {resource} is {kind}, which Amber cannot checkpoint yet{(why is null ? "" : $" ({why})")}")
{
    /// <summary>The process holding it.</summary>
    public int Pid { get; } = pid;

    /// <summary>What it is, as the message names it (fd 5, a mapping at an address...).</summary>
    public string Resource { get; } = resource;

    /// <summary>The kind Amber cannot save (a hugetlb mapping, a ptrace'd process...).</summary>
    public string Kind { get; } = kind;

    /// <summary>
    /// A state the program leaves by itself in a moment (events queued that it has not read yet): a
    /// checkpoint tried again a little later may well succeed.
    /// </summary>
    public bool Passing { get; init; }
}
