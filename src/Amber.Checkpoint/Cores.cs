using System.Runtime.ExceptionServices;

namespace Amber.Checkpoint;

/// <summary>Work spread over the machine's cores while the processes are frozen.</summary>
internal static class Cores
{
    /// <summary>
    /// <paramref name="body"/> for 0 .. <paramref name="count"/> - 1, in one contiguous share per core
    /// when there are many (under the freeze a thousand sockets cost tens of thousands of system
    /// calls, each on its own socket); in order on this thread otherwise. The first failure is thrown
    /// as it was, once every share stopped.
    /// </summary>
    public static void Spread(int count, Action<int> body)
    {
        const int PerWorker = 64;
        int workers = Math.Min(Environment.ProcessorCount, count / PerWorker);
        if (workers <= 1)
        {
            for (int i = 0; i < count; i++)
                body(i);
            return;
        }
        try
        {
            Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, w =>
            {
                for (int i = w * count / workers; i < (w + 1) * count / workers; i++)
                    body(i);
            });
        }
        catch (AggregateException e)
        {
            ExceptionDispatchInfo.Capture(e.InnerExceptions[0]).Throw();
        }
    }
}
