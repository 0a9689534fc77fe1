using System.Runtime.ExceptionServices;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// A second thread for work split in two, started once and reused for every split, so that no split
/// waits for the thread pool (whose threads may be busy, or not started yet, when it matters most).
/// </summary>
internal sealed class HelperThread : IDisposable
{
    private readonly Thread _thread;
    private readonly bool _givesWay;
    private readonly SemaphoreSlim _go = new(0), _done = new(0);
    private Action? _work;
    private ExceptionDispatchInfo? _failure;

    /// <param name="givesWay">Runs at a lower priority (<see cref="Kernel.Processes.BackgroundThread.GiveWay"/>).</param>
    public HelperThread(string name, bool givesWay = false)
    {
        _givesWay = givesWay;
        _thread = new Thread(Help) { Name = name, IsBackground = true };
        _thread.Start();
    }

    /// <summary>
    /// Runs <paramref name="there"/> on the helper while <paramref name="here"/> runs on this thread,
    /// and returns once both are done; a failure of <paramref name="here"/> is said first. One caller at a time.
    /// </summary>
    public void Split(Action there, Action here)
    {
        _work = there;
        _go.Release();
        try
        {
            here();
        }
        finally
        {
            _done.Wait();
        }
        var failure = _failure;
        _failure = null;
        failure?.Throw();
    }

    public void Dispose()
    {
        _work = null;
        _go.Release(); // no work: the helper ends
        _thread.Join();
    }

    private void Help()
    {
        if (_givesWay)
            Kernel.Processes.BackgroundThread.GiveWay();
        while (true)
        {
            _go.Wait();
            var work = _work;
            if (work is null)
                return;
            try
            {
                work();
            }
            catch (Exception e)
            {
                _failure = ExceptionDispatchInfo.Capture(e);
            }
            _done.Release();
        }
    }
}
