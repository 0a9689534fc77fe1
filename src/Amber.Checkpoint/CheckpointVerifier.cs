using Amber.Image;
using Amber.Image.Schema;

namespace Amber.Checkpoint;

/// <summary>
/// Checks a checkpoint completely, without restoring it: the manifest and every file's checksum,
/// every process image, and every page run's page checksums — those kept in earlier checkpoints of
/// the store too, so a damaged source is found from every checkpoint that needs it.
/// </summary>
public static class CheckpointVerifier
{
    /// <summary>
    /// Verifies checkpoints in order: a line each ("ID: ok" or "ID: DAMAGED: why"), and how many
    /// are damaged. One removed meanwhile (a merge folded it) is said so, not counted as damaged.
    /// </summary>
    public static (List<string> Lines, int Damaged) VerifyAll(IEnumerable<string> checkpoints)
    {
        var lines = new List<string>();
        int damaged = 0;
        foreach (var checkpoint in checkpoints)
        {
            string name = Path.GetFileName(checkpoint);
            string? problem = Verify(checkpoint);
            if (problem is not null && !Directory.Exists(checkpoint))
            {
                lines.Add($"{name}: removed while being verified (folded by a merge)");
                continue;
            }
            lines.Add(problem is null ? $"{name}: ok" : $"{name}: DAMAGED: {problem}");
            if (problem is not null)
                damaged++;
        }
        return (lines, damaged);
    }

    /// <summary>
    /// Null if the checkpoint is sound; otherwise what is wrong, in one line. Without
    /// <paramref name="pageData"/>, everything but the page data is checked (every run in its file):
    /// for a checkpoint whose pages were just checked on their way in, as a merge's.
    /// </summary>
    public static string? Verify(string directory, bool pageData = true)
    {
        try
        {
            var reader = CheckpointReader.Open(directory, verifyPageFiles: pageData);
            var images = reader.Manifest.Pids.Select(pid => reader.ReadMessage(ImageNames.Process(pid), ImageFileKind.Process, ProcessImage.Parser)).ToList();
            if (reader.Manifest.Forest)
                images.Add(reader.ReadMessage(ImageNames.Forest, ImageFileKind.Process, ProcessImage.Parser));
            for (uint s = 1; s <= (uint)reader.Manifest.Sources.Count; s++)
                CheckpointReader.Open(reader.Source(s).Directory, verifyPageFiles: pageData);
            var files = new Dictionary<(int, PageFileRef), PageFileReader>();
            try
            {
                if (reader.Manifest.Storage)
                {
                    var storage = reader.ReadMessage(ImageNames.Storage, ImageFileKind.Metadata, StorageImage.Parser);
                    Storage.StorageRollback.Validate(storage);
                    foreach (var root in storage.Roots)
                    {
                        foreach (var entry in root.Entries)
                        {
                            foreach (var run in entry.Blocks)
                            {
                                if (!files.TryGetValue((-1, run.StoredIn), out var pages))
                                    files[(-1, run.StoredIn)] = pages = reader.OpenPageFile(ImageNames.StoragePages, run.StoredIn);
                                if ((ulong)run.PageXxh3.Count != run.Count || !(pageData ? pages.VerifyRun(run) : pages.Holds(run)))
                                    return $"file {Storage.StoragePaths.Join(root.Path, entry.Path)} of the storage at offset {run.Address} ({run.Count} blocks in {(run.Source == 0 ? "this checkpoint" : reader.Manifest.Sources[(int)run.Source - 1])}) fails its checksums";
                            }
                        }
                    }
                }
                foreach (var image in images.Where(i => !i.Zombie))
                {
                    foreach (var (owner, run, what) in Runs(image))
                    {
                        int pid = owner == 0 ? image.Pid : owner;
                        if (!files.TryGetValue((pid, run.StoredIn), out var pages))
                            files[(pid, run.StoredIn)] = pages = reader.OpenPageFile(ImageNames.Pages(pid), run.StoredIn);
                        if ((ulong)run.PageXxh3.Count != run.Count || !(pageData ? pages.VerifyRun(run) : pages.Holds(run)))
                            return $"{what} of process {image.Pid} at {run.Address:x} ({run.Count} pages in {(run.Source == 0 ? "this checkpoint" : reader.Manifest.Sources[(int)run.Source - 1])}) fails its checksums";
                    }
                }
            }
            finally
            {
                foreach (var f in files.Values)
                    f.Dispose();
            }
            return null;
        }
        catch (Exception e) when (e is ImageFormatException or ImageStoreException or IOException or CheckpointException)
        {
            return e.Message.ReplaceLineEndings(" ");
        }
    }

    /// <summary>Every page run of an image: its memory, shared objects and deleted files, with the process whose page file holds it (0: itself).</summary>
    private static IEnumerable<(int Owner, PageRun Run, string What)> Runs(ProcessImage image) =>
        image.Mm.Pages.Select(r => (0, r, "memory"))
            .Concat(image.Mm.Shmem.SelectMany(s => s.Pages.Select(r => (s.PagesOf, r, $"shared memory {s.Id}"))))
            .Concat(image.Mm.SysvShm.SelectMany(s => s.Pages.Select(r => (s.PagesOf, r, $"System V segment {s.Id}"))))
            .Concat(image.DeletedFiles.SelectMany(d => d.Pages.Select(r => (d.PagesOf, r, $"deleted file {d.Path}"))));
}
