namespace Amber.Checkpoint;

/// <param name="ImagesDirectory">Where the checkpoint is committed (must not exist, or be empty).</param>
/// <param name="LeaveRunning">Resume the process after the dump instead of ending it.</param>
public sealed record CheckpointOptions(string ImagesDirectory, bool LeaveRunning);
