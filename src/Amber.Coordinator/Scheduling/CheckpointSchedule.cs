namespace Amber.Coordinator.Scheduling;

/// <summary>
/// When a group's next scheduled checkpoint is due: an interval after the schedule was set or the
/// last one was started; never for a group without an interval.
/// </summary>
public sealed class CheckpointSchedule
{
    public CheckpointSchedule(double everySeconds) => Restart(everySeconds);

    public DateTime Next { get; private set; }

    /// <summary>Counts the interval from now: at the start, when it changes, and as each checkpoint starts.</summary>
    public void Restart(double everySeconds) =>
        Next = everySeconds > 0 ? DateTime.UtcNow.AddSeconds(everySeconds) : DateTime.MaxValue;

    public bool IsDue(DateTime utcNow) => utcNow >= Next;
}
