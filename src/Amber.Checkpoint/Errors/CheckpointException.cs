namespace Amber.Checkpoint;

/// <summary>A checkpoint or restore failed for a reason the user can act on; the message is one line.</summary>
public class CheckpointException(string message, Exception? inner = null) : Exception(message, inner);
