namespace Amber.Coordinator.Control;

/// <summary>
/// How far an operation has come: sent by a worker to the coordinator a few times a second, and by
/// the coordinator to a CLI that asked (<see cref="ControlRequest.Progress"/>), which draws its bar
/// from it. The figures count from the operation's start.
/// </summary>
public sealed class ProgressSample
{
    /// <summary>The phase the operation is in (or the one it finished last); empty if not said.</summary>
    public string Phase { get; set; } = "";

    /// <summary>Bytes of image files read.</summary>
    public long BytesRead { get; set; }

    /// <summary>Bytes of page data written (as stored: compressed where it is).</summary>
    public long BytesWritten { get; set; }

    /// <summary>The bytes the operation expects to read or write in all; 0 when it cannot know.</summary>
    public long Expected { get; set; }
}
