using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Memory;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// Checks restored pages against the checksums taken at checkpoint. Those the process read into
/// place itself are read back from it (it has not run yet), on all cores: ~10× cheaper than reading
/// the page file twice from disk, and it also proves the pages landed where they belong. Those amber
/// writes into it are checked on their way (<see cref="Check"/>).
/// </summary>
public static class PageVerifier
{
    // Pages read back a chunk at a time: a buffer the size of a run (MiBs) would be fresh memory
    // for amber, slow to touch on a VM; a small one stays warm.
    private const int ChunkPages = 64;

    public static void Verify(int pid, IList<PageRun> runs, string pageFile)
    {
        var chunks = runs.SelectMany(run => Enumerable.Range(0, (int)((run.Count + ChunkPages - 1) / ChunkPages))
            .Select(c => (Run: run, First: c * ChunkPages, Pages: (int)Math.Min(ChunkPages, run.Count - (ulong)(c * ChunkPages))))).ToList();
        if (chunks.Count == 0)
            return;
        int workers = Math.Min(Math.Min(Environment.ProcessorCount, 8), chunks.Count);
        string? failure = null;
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, worker =>
        {
            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(ChunkPages * ImageFormat.PageSize);
            using var memory = new RemoteMemory(pid);
            for (int i = worker; i < chunks.Count && failure is null; i += workers)
            {
                var (run, first, pages) = chunks[i];
                var data = buffer.AsSpan(0, pages * ImageFormat.PageSize);
                memory.ReadBulk(run.Address + (ulong)first * ImageFormat.PageSize, data);
                int bad = PageHashes.FirstMismatch(data, run.PageXxh3, first);
                if (bad >= 0)
                    failure = Failure(run, first + bad, pageFile);
            }
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        });
        if (failure is not null)
            throw new CheckpointException(failure);
    }

    /// <summary>Checks pages on their way into the process (those amber writes itself).</summary>
    /// <exception cref="CheckpointException">A page does not match its checksum.</exception>
    public static void Check(ReadOnlySpan<byte> data, PageRun run, string pageFile)
    {
        if (Mismatch(data, run, pageFile) is { } failure)
            throw new CheckpointException(failure);
    }

    private static string? Mismatch(ReadOnlySpan<byte> data, PageRun run, string pageFile)
    {
        int bad = PageHashes.FirstMismatch(data, run.PageXxh3);
        return bad < 0 ? null : Failure(run, bad, pageFile);
    }

    private static string Failure(PageRun run, int page, string pageFile) =>
        $"{pageFile}: the page saved for address {run.Address + (ulong)page * ImageFormat.PageSize:x}{Kept(run)} does not match its checksum; the image is corrupt";

    private static string Kept(PageRun run) => (run.Source, run.Layer) switch
    {
        (0, 0) => "",
        (0, var layer) => $" (kept in layer {layer} of the checkpoint)",
        (var source, 0) => $" (kept in source checkpoint {source})",
        var (source, layer) => $" (kept in source checkpoint {source}, layer {layer})",
    };
}
