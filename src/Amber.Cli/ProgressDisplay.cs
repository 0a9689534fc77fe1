using System.Diagnostics;
using System.Runtime.ExceptionServices;
using Amber.Coordinator.Control;
using Amber.Image;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace Amber.Cli;

/// <summary>
/// A progress bar on standard error (Spectre.Console) while a checkpoint, restore, merge or verify
/// runs, here or in the coordinator (the --group forms): the phase, the bytes moved (of those expected, where the operation knows), the rate and the
/// time — only when standard error is a terminal, and only once the operation has run for a moment
/// (a short one prints nothing more than before). Cleared when the operation ends, before its report.
/// </summary>
public static class ProgressDisplay
{
    private static readonly TimeSpan Delay = TimeSpan.FromMilliseconds(200);

    /// <summary>Which bytes tell the operation's progress: the image read (restore, verify), or page data written (checkpoint, merge).</summary>
    public enum Measure { Read, Written }

    /// <summary>Runs <paramref name="work"/>, showing its progress on a terminal until it returns.</summary>
    public static T Run<T>(string operation, Measure measure, Func<T> work) => Run(operation, measure, _ => work());

    /// <summary>
    /// Runs <paramref name="work"/>, showing its progress on a terminal until it returns or calls the
    /// action it is given (a restore, before the processes it made run: the terminal may be theirs then),
    /// which returns once the bar is cleared.
    /// </summary>
    public static T Run<T>(string operation, Measure measure, Func<Action, T> work)
    {
        if (!OnTerminal)
            return work(() => { });
        long start = Bytes(measure);
        return Show(operation, () => new Figures(Bytes(measure) - start, PageProgress.Expected, PageProgress.Phase), work);
    }

    /// <summary>
    /// Runs <paramref name="work"/>, an operation the coordinator does (amber checkpoint --group...),
    /// showing the progress it reports: <paramref name="work"/> is given where to report it, or null
    /// when there is no terminal to show it on (then it need not ask the coordinator for it).
    /// </summary>
    public static T Remote<T>(string operation, Measure measure, Func<Action<ProgressSample>?, T> work)
    {
        if (!OnTerminal)
            return work(null);
        ProgressSample latest = new();
        return Show(operation, () =>
        {
            var sample = Volatile.Read(ref latest);
            return new Figures(measure == Measure.Read ? sample.BytesRead : sample.BytesWritten, sample.Expected, sample.Phase);
        }, _ => work(sample => Volatile.Write(ref latest, sample)));
    }

    private static bool OnTerminal => !Console.IsErrorRedirected && Environment.GetEnvironmentVariable("TERM") is not (null or "dumb");

    /// <summary>What the bar shows: bytes moved since the start, of those expected (0: unknown), in which phase.</summary>
    private readonly record struct Figures(long Moved, long Expected, string Phase);

    private static T Show<T>(string operation, Func<Figures> figures, Func<Action, T> work)
    {
        var clock = Stopwatch.StartNew();
        T result = default!;
        ExceptionDispatchInfo? failure = null;
        using var stop = new ManualResetEventSlim();
        using var cleared = new ManualResetEventSlim();
        var thread = new Thread(() =>
        {
            try
            {
                result = work(() =>
                {
                    stop.Set();
                    cleared.Wait();
                });
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
            finally
            {
                stop.Set();
            }
        }) { Name = $"amber-{operation}", IsBackground = true };
        thread.Start();
        try
        {
            if (!stop.Wait(Delay))
                Draw(operation, figures, clock, stop);
        }
        finally
        {
            cleared.Set();
        }
        thread.Join();
        failure?.Throw();
        return result;
    }

    private static void Draw(string operation, Func<Figures> figures, Stopwatch clock, ManualResetEventSlim stop)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        console.Progress().AutoClear(true).AutoRefresh(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new BytesColumn(clock), new ElapsedTimeColumn())
            .Start(context =>
            {
                var task = context.AddTask(operation, autoStart: true, maxValue: 1);
                while (!stop.Wait(100))
                {
                    var (moved, expected, phase) = figures();
                    task.IsIndeterminate = expected <= 0;
                    task.MaxValue = Math.Max(1, Math.Max(expected, moved));
                    task.Value = moved;
                    task.Description = phase.Length > 0 ? $"{operation} ({Markup.Escape(phase)})" : operation;
                    context.Refresh();
                }
            });
    }

    private static long Bytes(Measure measure) => measure == Measure.Read ? PageProgress.BytesRead : PageProgress.BytesWritten;

    /// <summary>"123.4 MiB, 980 MiB/s", or "123.4/512.0 MiB (24%), 980 MiB/s" when the total is known; the rate since the operation began.</summary>
    private sealed class BytesColumn(Stopwatch clock) : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime)
        {
            double mib = task.Value / 1048576, rate = mib / Math.Max(clock.Elapsed.TotalSeconds, 0.001);
            return new Text(task.IsIndeterminate ? $"{mib:0.0} MiB, {rate:0} MiB/s" : $"{mib:0.0}/{task.MaxValue / 1048576:0.0} MiB ({task.Percentage:0}%), {rate:0} MiB/s");
        }
    }
}
