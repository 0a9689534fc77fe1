using Amber.Checkpoint.Resources.Memory;
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
    /// <param name="checkpoints">The checkpoint directories.</param>
    /// <param name="key">The key of encrypted checkpoints (an encrypted one without it, or with another, is refused, not called damaged).</param>
    public static (List<string> Lines, int Damaged) VerifyAll(IEnumerable<string> checkpoints, ImageKey? key = null)
    {
        var lines = new List<string>();
        int damaged = 0;
        foreach (var checkpoint in checkpoints)
        {
            string name = Path.GetFileName(checkpoint);
            string? problem = Verify(checkpoint, key: key);
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
    /// <param name="asWritten">
    /// The process images (the forest's too) and the storage image the checkpoint was just written
    /// from, checked as they are rather than read back and parsed again (a merge's: megabytes of
    /// page checksums, a tenth of a second for a 2 GiB process).
    /// </param>
    /// <param name="directory">The checkpoint directory.</param>
    /// <param name="pageData">Whether to check the page data too.</param>
    /// <param name="key">The key of an encrypted checkpoint.</param>
    /// <exception cref="ImageKeyException">The checkpoint is encrypted and <paramref name="key"/> is missing or another.</exception>
    public static string? Verify(string directory, bool pageData = true, (IReadOnlyList<ProcessImage> Images, StorageImage? Storage)? asWritten = null, ImageKey? key = null)
    {
        try
        {
            var reader = CheckpointReader.Open(directory, verifyPageFiles: pageData, key: key);
            reader.ThrowIfNoKey();
            var images = asWritten?.Images.ToList()
                ?? [.. reader.Manifest.Pids.Select(pid => reader.ReadMessage(ImageNames.Process(pid), ImageFileKind.Process, ProcessImage.Parser))];
            if (reader.Manifest.Forest && asWritten is null)
                images.Add(reader.ReadMessage(ImageNames.Forest, ImageFileKind.Process, ProcessImage.Parser));
            for (uint s = 1; s <= (uint)reader.Manifest.Sources.Count; s++)
                CheckpointReader.Open(reader.Source(s).Directory, verifyPageFiles: pageData, key: key);
            var files = new Dictionary<(int, PageFileRef), PageFileReader>();
            (int, PageFileRef) lastFile = default;
            PageFileReader? last = null; // runs of one file come one after the other
            // Null if the run's pages are where it says (and, with pageData, match their checksums).
            string? Check(int key, string fileName, PageRun run, Func<string> what)
            {
                var file = (key, run.StoredIn);
                if (last is null || file != lastFile)
                {
                    if (!files.TryGetValue(file, out last))
                        files[file] = last = reader.OpenPageFile(fileName, run.StoredIn);
                    lastFile = file;
                }
                var pages = last;
                if ((ulong)run.PageXxh3.Count == run.Count && (pageData ? pages.VerifyRun(run) : pages.Holds(run)))
                    return null;
                string checkpoint = run.Source == 0 ? "this checkpoint" : reader.Manifest.Sources[(int)run.Source - 1];
                return $"{what()} ({run.Count} {(key < 0 ? "blocks" : "pages")} in {checkpoint}{(run.Layer > 0 ? $", layer {run.Layer}" : "")}) fails its checksums";
            }
            try
            {
                if (reader.Manifest.Storage)
                {
                    var storage = asWritten?.Storage ?? reader.ReadMessage(ImageNames.Storage, ImageFileKind.Metadata, StorageImage.Parser);
                    Storage.StorageRollback.Validate(storage);
                    foreach (var root in storage.Roots)
                    {
                        foreach (var entry in root.Entries)
                        {
                            foreach (var run in entry.Blocks)
                            {
                                if (Check(-1, ImageNames.StoragePages, run, () => $"file {Storage.StoragePaths.Join(root.Path, entry.Path)} of the storage at offset {run.Address}") is { } problem)
                                    return problem;
                            }
                        }
                    }
                }
                foreach (var image in images.Where(i => !i.Zombie))
                {
                    foreach (var (owner, runs, what) in ImageRuns.Of(image))
                    {
                        int pid = owner == 0 ? image.Pid : owner;
                        foreach (var run in runs)
                        {
                            if (Check(pid, ImageNames.Pages(pid), run, () => $"{what} of process {image.Pid} at {run.Address:x}") is { } problem)
                                return problem;
                        }
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
}
