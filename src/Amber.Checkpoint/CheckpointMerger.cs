using System.Diagnostics;
using Amber.Image;
using Amber.Image.Schema;

namespace Amber.Checkpoint;

/// <summary>What a merge did.</summary>
/// <param name="Removed">The earlier checkpoints of the chain that nothing needs any more, removed.</param>
public sealed record MergeResult(string Checkpoint, long Pages, long Bytes, IReadOnlyList<string> Removed, TimeSpan Total);

/// <summary>
/// Folds an incremental checkpoint and the earlier checkpoints it refers to into one full
/// checkpoint with the same content and the same name: every page kept elsewhere is copied in
/// (checked against its checksum on the way), the result is written beside it, committed and
/// verified, then swapped into place atomically; only then are the earlier checkpoints of its chain
/// that no other checkpoint needs removed. Interrupted at any moment (kill -9 included), the store
/// holds either the old chain or the merged checkpoint, and every checkpoint it lists still restores.
/// </summary>
public static class CheckpointMerger
{
    private const int ChunkPages = 1024;

    public static MergeResult Merge(string checkpoint, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        string dir = Path.TrimEndingDirectorySeparator(Path.GetFullPath(checkpoint));
        string store = Path.GetDirectoryName(dir)!;
        var reader = CheckpointReader.Open(dir, verifyPageFiles: false);
        var old = reader.Manifest;
        if (old.Sources.Count == 0)
            return new MergeResult(Path.GetFileName(dir), 0, 0, RemoveUnneeded(store, []), clock.Elapsed);

        string merged = $"{dir}.merge-{Guid.NewGuid():N}"[..(dir.Length + 15)];
        long pages = 0;
        using (var writer = CheckpointWriter.Create(merged))
        {
            var files = new Dictionary<int, PageFileWriter>();
            var images = old.Pids.Select(pid => reader.ReadMessage(ImageNames.Process(pid), ImageFileKind.Process, ProcessImage.Parser)).ToList();
            var forest = old.Forest ? reader.ReadMessage(ImageNames.Forest, ImageFileKind.Process, ProcessImage.Parser) : null;
            var buffer = new PageBuffer(ChunkPages * ImageFormat.PageSize);
            foreach (var image in forest is null ? images : [.. images, forest])
            {
                cancel.ThrowIfCancellationRequested();
                if (image.Zombie)
                    continue;
                foreach (var (owner, runs) in RunLists(image))
                {
                    int pid = owner == 0 ? image.Pid : owner;
                    if (!files.TryGetValue(pid, out var file))
                        files[pid] = file = writer.CreatePageFile(ImageNames.Pages(pid));
                    pages += CopyIn(reader, ImageNames.Pages(pid), runs, file, buffer, cancel);
                }
            }
            // A process whose page file held only other processes' objects still has its own file.
            foreach (var image in images.Where(i => !i.Zombie && !files.ContainsKey(i.Pid)))
                files[image.Pid] = writer.CreatePageFile(ImageNames.Pages(image.Pid));
            foreach (var image in images)
                writer.WriteMessage(ImageNames.Process(image.Pid), ImageFileKind.Process, image);
            if (forest is not null)
                writer.WriteMessage(ImageNames.Forest, ImageFileKind.Process, forest);
            if (old.Storage)
            {
                var storage = reader.ReadMessage(ImageNames.Storage, ImageFileKind.Metadata, StorageImage.Parser);
                PageFileWriter? file = null;
                foreach (var entry in storage.Roots.SelectMany(r => r.Entries).Where(e => e.Blocks.Count > 0))
                    pages += CopyIn(reader, ImageNames.StoragePages, entry.Blocks, file ??= writer.CreatePageFile(ImageNames.StoragePages), buffer, cancel);
                writer.WriteMessage(ImageNames.Storage, ImageFileKind.Metadata, storage);
            }
            var manifest = old.Clone();
            manifest.Parent = "";
            manifest.Sources.Clear();
            manifest.Merged = true;
            manifest.Files.Clear();
            writer.Commit(manifest);
        }
        try
        {
            if (CheckpointVerifier.Verify(merged) is { } problem)
                throw new CheckpointException($"the merged checkpoint fails its own verification: {problem}");
            Faults.Check(FaultPoint.MergeBeforeSwap);
            CheckpointStore.Replace(dir, merged);
        }
        catch
        {
            if (Directory.Exists(merged))
                CheckpointStore.Delete(merged);
            throw;
        }
        long bytes = new DirectoryInfo(dir).EnumerateFiles().Sum(f => f.Length);
        return new MergeResult(Path.GetFileName(dir), pages, bytes, RemoveUnneeded(store, [.. old.Sources]), clock.Elapsed);
    }

    /// <summary>
    /// Removes the given checkpoints of the store that no remaining checkpoint refers to, and
    /// leftovers of interrupted merges. Returns the names removed.
    /// </summary>
    public static List<string> RemoveUnneeded(string store, IReadOnlyList<string> candidates)
    {
        var removed = new List<string>();
        foreach (var leftover in Directory.GetDirectories(store, "*.merge-*"))
        {
            CheckpointStore.Delete(leftover);
        }
        var remaining = new HashSet<string>(candidates);
        bool changed = true;
        while (changed)
        {
            changed = false;
            // What the checkpoints that stay refer to stays too; the candidates do not keep each other.
            var needed = Directory.GetDirectories(store).Where(d => !remaining.Contains(Path.GetFileName(d))).SelectMany(SourcesOf).ToHashSet();
            foreach (var name in remaining.Where(n => !needed.Contains(n)).ToList())
            {
                string path = Path.Join(store, name);
                if (Directory.Exists(path))
                    CheckpointStore.Delete(path);
                removed.Add(name);
                remaining.Remove(name);
                changed = true;
            }
        }
        return removed;
    }

    private static IEnumerable<string> SourcesOf(string checkpoint)
    {
        try
        {
            return CheckpointReader.Open(checkpoint, verifyPageFiles: false).Manifest.Sources;
        }
        catch (Exception e) when (e is ImageFormatException or ImageStoreException)
        {
            return [];
        }
    }

    /// <summary>Every list of page runs of an image, with the process whose page file holds it (0: itself).</summary>
    private static IEnumerable<(int Owner, IList<PageRun> Runs)> RunLists(ProcessImage image) =>
        new[] { (0, (IList<PageRun>)image.Mm.Pages) }
            .Concat(image.Mm.Shmem.Select(s => (s.PagesOf, (IList<PageRun>)s.Pages)))
            .Concat(image.Mm.SysvShm.Select(s => (s.PagesOf, (IList<PageRun>)s.Pages)))
            .Concat(image.DeletedFiles.Select(d => (d.PagesOf, (IList<PageRun>)d.Pages)));

    /// <summary>Copies every run's pages, wherever they are kept, into <paramref name="file"/>; the runs then point there.</summary>
    private static long CopyIn(CheckpointReader reader, string fileName, IList<PageRun> runs, PageFileWriter file, PageBuffer buffer, CancellationToken cancel)
    {
        long pages = 0;
        var sources = new Dictionary<uint, PageFileReader>();
        try
        {
            foreach (var run in runs)
            {
                cancel.ThrowIfCancellationRequested();
                if (!sources.TryGetValue(run.Source, out var from))
                    sources[run.Source] = from = reader.OpenPageFile(fileName, run.Source);
                ulong newOffset = 0;
                for (int done = 0; done < (int)run.Count; done += ChunkPages)
                {
                    int n = Math.Min(ChunkPages, (int)run.Count - done);
                    var data = buffer.Span[..(n * ImageFormat.PageSize)];
                    var hashes = run.PageXxh3.Skip(done).Take(n).ToList();
                    from.ReadRun(run.FileOffset + (ulong)done * ImageFormat.PageSize, data, hashes);
                    ulong at = file.AppendData(data);
                    if (done == 0)
                        newOffset = at;
                }
                run.FileOffset = newOffset;
                run.Source = 0;
                pages += (long)run.Count;
            }
        }
        finally
        {
            foreach (var s in sources.Values)
                s.Dispose();
        }
        return pages;
    }
}
