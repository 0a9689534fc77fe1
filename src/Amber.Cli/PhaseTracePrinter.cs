using System.Diagnostics;
using Amber.Checkpoint;

namespace Amber.Cli;

/// <summary>
/// AMBER_TRACE=1: the time of each phase of a checkpoint, restore or merge on stderr, printed as each
/// operation ends (<see cref="PhaseTrace"/>).
/// </summary>
public static class PhaseTracePrinter
{
    public static void StartIfAsked()
    {
        if (Environment.GetEnvironmentVariable("AMBER_TRACE") != "1")
            return;
        ActivitySource.AddActivityListener(new ActivityListener
        {
            ShouldListenTo = source => source.Name == PhaseTrace.SourceName,
            Sample = (ref ActivityCreationOptions<ActivityContext> _) => ActivitySamplingResult.AllData,
            ActivityStopped = Print,
        });
    }

    private static void Print(Activity operation)
    {
        foreach (var phase in operation.Events)
        {
            double ms = phase.Tags.FirstOrDefault(t => t.Key == PhaseTrace.PhaseMs).Value is double d ? d : 0;
            double at = (phase.Timestamp - operation.StartTimeUtc).TotalMilliseconds;
            Console.Error.WriteLine($"amber: {operation.OperationName}: {phase.Name,-24} {ms,8:0.0} ms  (at {at:0.0} ms)");
        }
    }
}
