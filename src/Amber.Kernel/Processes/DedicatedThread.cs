using System.Runtime.ExceptionServices;

namespace Amber.Kernel.Processes;

/// <summary>
/// Runs work start to end on an OS thread of its own, never on thread-pool continuations, and hands
/// back its result or exception: for kernel state that belongs to a thread, not to the process (a
/// ptrace tracer; where a thread's children are born after it joined or made a PID namespace).
/// </summary>
public static class DedicatedThread
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
