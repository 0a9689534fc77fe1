using System.Diagnostics;

namespace Amber.Checkpoint;

/// <summary>
/// Time spent per phase of a checkpoint or restore, printed to stderr when AMBER_TRACE=1: the
/// numbers behind the benchmark, without a profiler.
/// </summary>
public sealed class PhaseTrace
{
    private static readonly bool Enabled = Environment.GetEnvironmentVariable("AMBER_TRACE") == "1";
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly string _operation;
    private TimeSpan _last;

    public PhaseTrace(string operation) => _operation = operation;

    public void Mark(string phase)
    {
        if (!Enabled)
            return;
        var now = _clock.Elapsed;
        Console.Error.WriteLine($"amber: {_operation}: {phase,-24} {(now - _last).TotalMilliseconds,8:0.0} ms  (at {now.TotalMilliseconds:0.0} ms)");
        _last = now;
    }
}
