using Amber.Image.Schema;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// Every list of page runs a process image holds: its memory first, then its shared memory objects,
/// System V segments and deleted files. The one place that knows them all, so that the merge, the
/// verifier and the pruning of sources never miss one.
/// </summary>
public static class ImageRuns
{
    /// <returns>Each list with the process whose page file holds it (0: the image's own) and what it is.</returns>
    public static IEnumerable<(int Owner, IList<PageRun> Runs, string What)> Of(ProcessImage image) =>
        image.Mm is null
            ? []
            : new[] { (0, (IList<PageRun>)image.Mm.Pages, "memory") }
                .Concat(image.Mm.Shmem.Select(s => (s.PagesOf, (IList<PageRun>)s.Pages, $"shared memory {s.Id}")))
                .Concat(image.Mm.SysvShm.Select(s => (s.PagesOf, (IList<PageRun>)s.Pages, $"System V segment {s.Id}")))
                .Concat(image.DeletedFiles.Select(d => (d.PagesOf, (IList<PageRun>)d.Pages, $"deleted file {d.Path}")));
}
