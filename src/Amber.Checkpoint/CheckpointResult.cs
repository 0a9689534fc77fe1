namespace Amber.Checkpoint;

/// <param name="FrozenFor">From the moment the process was stopped to the moment it was resumed or ended.</param>
public sealed record CheckpointResult(int Pid, long PagesWritten, long ImageBytes, TimeSpan FrozenFor, TimeSpan Total, IReadOnlyList<string> Warnings);
