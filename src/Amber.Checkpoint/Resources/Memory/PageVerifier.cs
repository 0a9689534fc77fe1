using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Memory;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// Checks every restored page against the checksum taken at checkpoint, reading it back from
/// the new process (which has not run yet) on all cores. Reading the memory back is ~10× cheaper than
/// reading the page file twice from disk, and it also proves the pages landed where they belong.
/// </summary>
public static class PageVerifier
{
    public static void Verify(int pid, IList<PageRun> runs, string pageFile)
    {
        if (runs.Count == 0)
            return;
        int workers = Math.Min(Environment.ProcessorCount, 8);
        string? failure = null;
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, worker =>
        {
            // From the pool: memory amber touched before (the runs it filled) is much faster to touch again on a VM than fresh.
            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(MaxRunBytes(runs));
            using var memory = new RemoteMemory(pid);
            for (int i = worker; i < runs.Count && failure is null; i += workers)
            {
                var run = runs[i];
                var data = buffer.AsSpan(0, checked((int)(run.Count * ImageFormat.PageSize)));
                memory.ReadBulk(run.Address, data);
                int bad = PageHashes.FirstMismatch(data, run.PageXxh3);
                if (bad >= 0)
                    failure = $"{pageFile}: the page saved for address {run.Address + (ulong)bad * ImageFormat.PageSize:x}{Kept(run)} does not match its checksum; the image is corrupt";
            }
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        });
        if (failure is not null)
            throw new CheckpointException(failure);
    }

    private static string Kept(PageRun run) => (run.Source, run.Layer) switch
    {
        (0, 0) => "",
        (0, var layer) => $" (kept in layer {layer} of the checkpoint)",
        (var source, 0) => $" (kept in source checkpoint {source})",
        var (source, layer) => $" (kept in source checkpoint {source}, layer {layer})",
    };

    private static int MaxRunBytes(IList<PageRun> runs) => (int)runs.Max(r => r.Count) * ImageFormat.PageSize;
}
