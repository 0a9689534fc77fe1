using System.Text.Json;
using Amber.Coordinator.Control;
using Amber.Image;
using Amber.Kernel.Files;

namespace Amber.Coordinator.Workers;

/// <summary>
/// A worker's progress, sent to the coordinator that asked for it: every 100 ms, and once more at the
/// end, this process's <see cref="PageProgress"/> as one JSON line on the pipe whose fd the
/// coordinator put in <see cref="FdVariable"/>. Never slows the work: a line the pipe has no room for
/// is dropped.
/// </summary>
public sealed class WorkerProgress : IDisposable
{
    /// <summary>The environment variable that names the pipe's fd in the worker.</summary>
    public const string FdVariable = "AMBER_PROGRESS_FD";

    /// <summary>The fd the coordinator gives the worker its end of the pipe at.</summary>
    internal const int Fd = 9;

    private static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(100);

    private readonly HeldFile _pipe;
    private readonly Thread _sender;
    private readonly ManualResetEventSlim _done = new();

    private WorkerProgress(int fd)
    {
        _pipe = NotePipe.Inherited(fd);
        _sender = new Thread(Send) { IsBackground = true, Name = "amber-progress" };
        _sender.Start();
    }

    /// <summary>Starts sending if the coordinator asked (<see cref="FdVariable"/> is set); null otherwise.</summary>
    public static WorkerProgress? Start()
    {
        string? value = Environment.GetEnvironmentVariable(FdVariable);
        // Not for the worker's own children (a restored program, the exec helper).
        Environment.SetEnvironmentVariable(FdVariable, null);
        if (!int.TryParse(value, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out int fd) || fd <= 2)
            return null;
        try
        {
            return new WorkerProgress(fd);
        }
        catch (Amber.Kernel.KernelCallException)
        {
            return null; // for show only: no pipe, no progress, the work all the same
        }
    }

    /// <summary>Sends the last figures and closes the pipe.</summary>
    public void Dispose()
    {
        _done.Set();
        _sender.Join();
        _done.Dispose();
    }

    private void Send()
    {
        try
        {
            while (!_done.Wait(Interval) && SendNow())
            {
            }
            SendNow();
        }
        finally
        {
            _pipe.Dispose();
        }
    }

    private bool SendNow()
    {
        var sample = new ProgressSample { Phase = PageProgress.Phase, BytesRead = PageProgress.BytesRead, BytesWritten = PageProgress.BytesWritten, Expected = PageProgress.Expected };
        var line = JsonSerializer.Serialize(sample, ControlJson.Default.ProgressSample);
        // A full pipe drops a sample; a closed one (the coordinator went away) ends the sending.
        return NotePipe.TryWrite(_pipe, line) != NotePipe.Sent.ReaderGone;
    }
}
