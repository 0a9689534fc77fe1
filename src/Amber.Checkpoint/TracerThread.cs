using System.Runtime.ExceptionServices;

namespace Amber.Checkpoint;

/// <summary>
/// ptrace is thread-affine (a tracer is a thread, not a process), so each checkpoint or restore runs
/// start to end on one dedicated OS thread, never on thread-pool continuations.
/// </summary>
public static class TracerThread
{
    public static T Run<T>(string name, Func<T> work)
    {
        T? result = default;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try { result = work(); }
            catch (Exception e) { failure = ExceptionDispatchInfo.Capture(e); }
        }, maxStackSize: 4 << 20)
        { Name = name, IsBackground = false };
        thread.Start();
        thread.Join();
        failure?.Throw();
        return result!;
    }
}
