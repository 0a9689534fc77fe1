namespace Amber.Coordinator.Control;

/// <summary>amber receive: a group read from a stream (amber migrate --to-file's), made here, and restored if asked.</summary>
/// <param name="FromFd">The requester's fd the stream comes from.</param>
/// <param name="Restore">Restore the group once its checkpoints are in.</param>
public sealed record ReceiveRequest(int FromFd, bool Restore) : Request
{
    /// <summary>The operation's name on the control socket (<see cref="ControlRequest.Op"/>).</summary>
    public const string Op = "receive";

    /// <inheritdoc/>
    public override ControlRequest ToWire() => new() { Op = Op, Fd = FromFd, Restore = Restore };
}
