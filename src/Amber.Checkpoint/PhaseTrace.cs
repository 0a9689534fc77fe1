using System.Diagnostics;
using Amber.Image;

namespace Amber.Checkpoint;

/// <summary>
/// The phases of one checkpoint, restore or merge, as events of one <see cref="Activity"/> of
/// <see cref="Source"/>: the numbers behind the benchmark, for whoever listens (the CLI prints them
/// with AMBER_TRACE=1; an OpenTelemetry exporter could collect them). Costs nothing unheard.
/// </summary>
public sealed class PhaseTrace : IDisposable
{
    public const string SourceName = "Amber.Checkpoint";

    /// <summary>Tag of each phase event: milliseconds since the phase before.</summary>
    public const string PhaseMs = "amber.phase_ms";

    public static readonly ActivitySource Source = new(SourceName);

    private readonly Activity? _activity;
    private readonly long _start = Stopwatch.GetTimestamp();
    private TimeSpan _last;

    /// <param name="operation">"checkpoint", "restore", "merge"...: the activity's name.</param>
    public PhaseTrace(string operation) => _activity = Source.StartActivity(operation);

    /// <summary>Ends a phase: an event named <paramref name="phase"/>, with the time it took.</summary>
    public void Mark(string phase)
    {
        PageProgress.Phase = phase;
        if (_activity is null)
            return;
        var now = Stopwatch.GetElapsedTime(_start);
        _activity.AddEvent(new ActivityEvent(phase, tags: new ActivityTagsCollection { [PhaseMs] = (now - _last).TotalMilliseconds }));
        _last = now;
    }

    public void Dispose() => _activity?.Dispose();
}
