namespace Amber.Checkpoint;

/// <summary>
/// ptrace is thread-affine (a tracer is a thread, not a process), so each checkpoint or restore runs
/// start to end on one dedicated OS thread, never on thread-pool continuations.
/// </summary>
public static class TracerThread
{
    public static T Run<T>(string name, Func<T> work) => Kernel.Processes.DedicatedThread.Run(name, work);
}
