namespace Amber.Checkpoint;

/// <summary>The process holds something Amber cannot save yet; nothing was changed in it.</summary>
public sealed class UnsupportedResourceException(int pid, string resource, string kind, string? why = null)
    : CheckpointException($"process {pid}: {resource} is {kind}, which Amber cannot checkpoint yet{(why is null ? "" : $" ({why})")}")
{
    public int Pid { get; } = pid;

    public string Resource { get; } = resource;

    public string Kind { get; } = kind;
}
