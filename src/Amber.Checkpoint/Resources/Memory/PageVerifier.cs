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
        // Short chunks read back together, one process_vm_readv for up to ChunkPages pages of them: a
        // chain's end leaves its base's pages in ~90 000 short runs between the newer ones (a call
        // each: 850-870 ms to check them beside the copy of the newer pages; 670-800 ms so).
        var reads = new List<(int First, int Count)>();
        for (int i = 0; i < chunks.Count;)
        {
            int j = i, pages = 0;
            for (; j < chunks.Count && pages + chunks[j].Pages <= ChunkPages; j++) // at most ChunkPages ranges, far below IOV_MAX
                pages += chunks[j].Pages;
            reads.Add((i, j - i));
            i = j;
        }
        int workers = Math.Min(Math.Min(Environment.ProcessorCount, 8), reads.Count);
        string? failure = null;
        Parallel.For(0, workers, new ParallelOptions { MaxDegreeOfParallelism = workers }, worker =>
        {
            var buffer = System.Buffers.ArrayPool<byte>.Shared.Rent(ChunkPages * ImageFormat.PageSize);
            var ranges = new (ulong Address, int Length)[ChunkPages];
            using var memory = new RemoteMemory(pid);
            for (int r = worker; r < reads.Count && failure is null; r += workers)
            {
                var (first, count) = reads[r];
                int length = 0;
                for (int k = 0; k < count; k++)
                {
                    var (run, at, pages) = chunks[first + k];
                    ranges[k] = (run.Address + (ulong)at * ImageFormat.PageSize, pages * ImageFormat.PageSize);
                    length += pages * ImageFormat.PageSize;
                }
                if (count == 1)
                    memory.ReadBulk(ranges[0].Address, buffer.AsSpan(0, length));
                else
                    memory.ReadScattered(ranges.AsSpan(0, count), buffer.AsSpan(0, length));
                int offset = 0;
                for (int k = 0; k < count && failure is null; k++)
                {
                    var (run, at, pages) = chunks[first + k];
                    int bad = PageHashes.FirstMismatch(buffer.AsSpan(offset, pages * ImageFormat.PageSize), run.PageXxh3, at);
                    if (bad >= 0)
                        failure = Failure(run, at + bad, pageFile);
                    offset += pages * ImageFormat.PageSize;
                }
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
