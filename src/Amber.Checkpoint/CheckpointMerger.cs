using System.Diagnostics;
using Amber.Checkpoint.Resources.Memory;
using Amber.Image;
using Amber.Image.Schema;

namespace Amber.Checkpoint;

/// <summary>What a merge did.</summary>
/// <param name="Pages">The pages copied into the merged checkpoint's own page files.</param>
/// <param name="PagesLinked">The pages kept where they were, in page files of the chain the merged checkpoint took in as layers.</param>
/// <param name="Removed">The earlier checkpoints of the chain that nothing needs any more, removed.</param>
public sealed record MergeResult(string Checkpoint, long Pages, long PagesLinked, long Bytes, IReadOnlyList<string> Removed, TimeSpan Total);

/// <summary>
/// Folds an incremental checkpoint and the earlier checkpoints it refers to into one full
/// checkpoint with the same content and the same name. A page file of the chain that still holds
/// mostly pages in use (the base checkpoint's, typically) is taken in whole by a hard link, as a
/// layer of the merged checkpoint (<see cref="MergeLayers"/>); every other page is copied in,
/// checked against its checksum on the way. The result is written beside it, committed and
/// verified (all but the page data), then swapped into place atomically; only then are the earlier
/// checkpoints of its chain that no other checkpoint needs removed. Interrupted at any moment (kill
/// -9 included), the store holds either the old chain or the merged checkpoint, and every
/// checkpoint it lists still restores.
/// </summary>
public static class CheckpointMerger
{
    private const int ChunkPages = 1024;

    /// <param name="checkpoint">The incremental checkpoint to fold.</param>
    /// <param name="copyAll">Copy every page, linking no page file: a checkpoint that shares no file with any other and holds nothing unused.</param>
    /// <param name="removeChain">Remove the earlier checkpoints of the chain that nothing needs any more; false when a retention policy decides what stays (<see cref="StoreRetention"/>).</param>
    /// <param name="key">The key of an encrypted chain: the merged checkpoint is encrypted with it too.</param>
    /// <param name="cancel">Stops the merge; the chain stays as it was.</param>
    public static MergeResult Merge(string checkpoint, bool copyAll = false, ImageKey? key = null, bool removeChain = true, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        using var trace = new PhaseTrace("merge");
        string dir = Path.TrimEndingDirectorySeparator(Path.GetFullPath(checkpoint));
        string store = Path.GetDirectoryName(dir)!;
        var reader = CheckpointReader.Open(dir, verifyPageFiles: false, key: key);
        reader.ThrowIfNoKey();
        var old = reader.Manifest;
        if (old.Sources.Count == 0)
            return new MergeResult(Path.GetFileName(dir), 0, 0, 0, RemoveUnneeded(store, []), clock.Elapsed);

        // Its page files are rewritten: a later checkpoint that refers to them would be left pointing at other bytes.
        var dependents = Directory.GetDirectories(store).Where(d => d != dir && !d.Contains(".merge-", StringComparison.Ordinal) && SourcesOf(d).Contains(Path.GetFileName(dir)))
            .Select(Path.GetFileName).Order(StringComparer.Ordinal).ToList();
        if (dependents.Count > 0)
            throw new CheckpointException($"{Path.GetFileName(dir)} cannot be merged: {string.Join(", ", dependents)} {(dependents.Count == 1 ? "refers" : "refer")} to its pages; merge {dependents[^1]} instead");
        string merged = $"{dir}.merge-{Guid.NewGuid():N}"[..(dir.Length + 15)];
        long pages = 0, linked = 0;
        var images = old.Pids.Select(pid => reader.ReadMessage(ImageNames.Process(pid), ImageFileKind.Process, ProcessImage.Parser)).ToList();
        var forest = old.Forest ? reader.ReadMessage(ImageNames.Forest, ImageFileKind.Process, ProcessImage.Parser) : null;
        var storage = old.Storage ? reader.ReadMessage(ImageNames.Storage, ImageFileKind.Metadata, StorageImage.Parser) : null;
        using (var writer = CheckpointWriter.Create(merged, reader.Key))
        {
            var lists = RunLists(images, forest, storage);
            var layers = copyAll ? [] : MergeLayers.Link(reader, writer, lists);
            trace.Mark($"linked {layers.Values.Sum(l => l.Count)} page files");
            // Two buffers: one is filled from the chain while the other is written out.
            PageBuffer[] buffer = [new(ChunkPages * ImageFormat.PageSize), new(ChunkPages * ImageFormat.PageSize)];
            var spans = new Dictionary<PageFileRef, PageBuffer>(); // what each page file of the chain is read into
            var files = new Dictionary<string, PageFileWriter>();
            foreach (var list in lists)
            {
                cancel.ThrowIfCancellationRequested();
                if (!files.TryGetValue(list.FileName, out var file))
                    files[list.FileName] = file = writer.CreatePageFile(list.FileName);
                var (copied, kept) = CopyIn(reader, list, file, buffer, spans, layers.GetValueOrDefault(list.FileName) ?? [], cancel);
                pages += copied;
                linked += kept;
            }
            // A process whose page file held only other processes' objects still has its own file.
            foreach (var image in images.Where(i => !i.Zombie && !files.ContainsKey(ImageNames.Pages(i.Pid))))
                files[ImageNames.Pages(image.Pid)] = writer.CreatePageFile(ImageNames.Pages(image.Pid));
            foreach (var image in images)
                writer.WriteMessage(ImageNames.Process(image.Pid), ImageFileKind.Process, image);
            if (forest is not null)
                writer.WriteMessage(ImageNames.Forest, ImageFileKind.Process, forest);
            if (storage is not null)
                writer.WriteMessage(ImageNames.Storage, ImageFileKind.Metadata, storage);
            var manifest = old.Clone();
            manifest.Parent = "";
            manifest.Sources.Clear();
            manifest.Merged = true;
            manifest.Files.Clear();
            if (layers.Values.Any(l => l.Count > 0) && !manifest.RequiredFeatures.Contains(ImageFormat.PageLayersFeature))
                manifest.RequiredFeatures.Add(ImageFormat.PageLayersFeature);
            trace.Mark("pages copied");
            writer.Commit(manifest);
            trace.Mark("commit");
        }
        try
        {
            // Every page copied was checked against its checksum on its way in, and a linked file is
            // the one its checkpoint committed; what the runs became is checked here.
            if (CheckpointVerifier.Verify(merged, pageData: false, ([.. images, .. forest is null ? [] : new[] { forest }], storage), reader.Key) is { } problem)
                throw new CheckpointException($"the merged checkpoint fails its own verification: {problem}");
            trace.Mark("verify");
            Faults.Check(FaultPoint.MergeBeforeSwap);
            CheckpointStore.Replace(dir, merged);
            trace.Mark("swap");
        }
        catch
        {
            if (Directory.Exists(merged))
                CheckpointStore.Delete(merged);
            throw;
        }
        long bytes = new DirectoryInfo(dir).EnumerateFiles().Sum(f => f.Length);
        return new MergeResult(Path.GetFileName(dir), pages, linked, bytes, RemoveUnneeded(store, removeChain ? [.. old.Sources] : []), clock.Elapsed);
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

    /// <summary>
    /// Every list of page runs of the checkpoint, with the name of the page file that holds it: each
    /// process's memory, shared objects and deleted files (in the page file of the process that
    /// saved them), and the storage's files.
    /// </summary>
    private static List<RunList> RunLists(List<ProcessImage> images, ProcessImage? forest, StorageImage? storage)
    {
        var lists = new List<RunList>();
        foreach (var image in forest is null ? images : [.. images, forest])
        {
            if (image.Zombie)
                continue;
            // A run of memory never spans two mappings: joined runs stay inside one.
            var mappings = image.Mm.Vmas.Select(v => (v.Start, v.End)).OrderBy(v => v.Start).ToArray();
            // A chain saved compressed stays compressed (with the codec its memory was saved with).
            var codec = image.Mm.Pages.Select(r => r.Codec).FirstOrDefault(c => c != Codec.None);
            foreach (var (owner, runs, _) in ImageRuns.Of(image))
            {
                bool memory = runs == image.Mm.Pages;
                lists.Add(new RunList(ImageNames.Pages(owner == 0 ? image.Pid : owner), runs, memory ? mappings : null, memory ? codec : Codec.None));
            }
        }
        if (storage is not null)
            lists.AddRange(storage.Roots.SelectMany(r => r.Entries).Where(e => e.Blocks.Count > 0).Select(e => new RunList(ImageNames.StoragePages, e.Blocks, null, Codec.None)));
        return lists;
    }

    /// <summary>
    /// Copies every run's pages, wherever they are kept, into <paramref name="file"/>, checking each
    /// against its checksum on the way; the runs then point there. Runs kept in a page file the merged
    /// checkpoint took in (<paramref name="layers"/>: where each is, its layer) only point to that layer.
    /// A long chain leaves the runs fragmented (every checkpoint splits them at the pages written
    /// since), so the copy goes a buffer at a time: runs that follow each other where they are kept
    /// are read together, the buffer is appended in one write, and the new runs are joined again (up
    /// to the size a run has when first written, and inside one mapping where the list has them).
    /// With a codec, each buffer is stored as one compressed block, its runs slices of it.
    /// Returns the pages copied and the pages left in layers.
    /// </summary>
    private static (long Copied, long Linked) CopyIn(CheckpointReader reader, RunList list, PageFileWriter file, PageBuffer[] buffers,
        Dictionary<PageFileRef, PageBuffer> spans, IReadOnlyDictionary<PageFileRef, uint> layers, CancellationToken cancel)
    {
        var runs = list.Runs;
        // Each page file of the chain is read in the order its pieces are needed (address order,
        // the order it wrote them in), through a window that reads ahead in large spans.
        var plans = runs.Where(r => !r.IsBlock && !layers.ContainsKey(r.StoredIn)).GroupBy(r => r.StoredIn)
            .ToDictionary(g => g.Key, g => g.Select(r => (r.FileOffset, r.Count * (ulong)ImageFormat.PageSize)));
        var sources = new Dictionary<PageFileRef, PageWindow>();
        var batch = new Batch(buffers, list.Mappings, list.Codec);
        var copied = new List<PageRun>(runs.Count);
        var kept = new List<PageRun>();
        long pages = 0, linked = 0;
        try
        {
            foreach (var run in runs)
            {
                cancel.ThrowIfCancellationRequested();
                if (layers.TryGetValue(run.StoredIn, out uint layer))
                {
                    var there = run.Clone();
                    there.Source = 0;
                    there.Layer = layer;
                    kept.Add(there);
                    linked += (long)run.Count;
                    continue;
                }
                if (!sources.TryGetValue(run.StoredIn, out var from))
                {
                    if (!spans.TryGetValue(run.StoredIn, out var span))
                        spans[run.StoredIn] = span = new PageBuffer(PageWindow.SpanBytes);
                    sources[run.StoredIn] = from = new PageWindow(reader.OpenPageFile(list.FileName, run.StoredIn), plans.GetValueOrDefault(run.StoredIn) ?? [], span);
                }
                ulong[] hashes = [.. run.PageXxh3];
                for (int done = 0; done < (int)run.Count;)
                {
                    if (batch.Room == 0)
                        batch.Flush(file, copied);
                    int n = Math.Min(batch.Room, (int)run.Count - done);
                    batch.Add(from, run, hashes, done, n);
                    done += n;
                }
                pages += (long)run.Count;
            }
            batch.Flush(file, copied);
            batch.Finish(copied);
        }
        finally
        {
            batch.Finish(null); // never leaves a write running past the sources and buffers
            foreach (var s in sources.Values)
                s.File.Dispose();
        }
        runs.Clear();
        // Both lists are in the order of the runs (by address); they interleave back into it.
        int k = 0;
        foreach (var run in copied)
        {
            for (; k < kept.Count && kept[k].Address < run.Address; k++)
                runs.Add(kept[k]);
            runs.Add(run);
        }
        for (; k < kept.Count; k++)
            runs.Add(kept[k]);
        return (pages, linked);
    }

    /// <summary>A list of page runs of the checkpoint, the name of the page file that holds them, and how copies of them are stored.</summary>
    /// <param name="Mappings">The process's mappings, for its memory (a run does not go on across one's start); null otherwise.</param>
    internal sealed record RunList(string FileName, IList<PageRun> Runs, (ulong Start, ulong End)[]? Mappings, Codec Codec);

    /// <summary>
    /// Pages gathered in a buffer: the reads that fill it, and the runs they become. A full buffer is
    /// written out in the background while the next one is filled.
    /// </summary>
    private sealed class Batch(PageBuffer[] buffers, (ulong Start, ulong End)[]? mappings, Codec codec)
    {
        // Uncompressed pages that follow each other in one file are read at once; a compressed slice alone.
        private readonly List<(PageWindow From, ulong FileOffset, int Pages, List<ulong> Hashes, PageRun? Compressed)> _reads = [];
        private List<(ulong Address, int Pages, int At, ArraySegment<ulong> Hashes)> _pieces = [];
        private List<(ulong Address, int Pages, int At, ArraySegment<ulong> Hashes)> _writing = [];
        private Task<StoredBlock>? _write; // of the other buffer, holding _writing
        private int _filling;
        private int _used; // pages

        private PageBuffer Buffer => buffers[_filling];

        public int Room => Buffer.Length / ImageFormat.PageSize - _used;

        /// <summary>Pages [first, first + count) of <paramref name="run"/> (its checksums <paramref name="all"/>), kept in <paramref name="from"/>.</summary>
        public void Add(PageWindow from, PageRun run, ulong[] all, int first, int count)
        {
            var hashes = new ArraySegment<ulong>(all, first, count);
            ulong offset = run.FileOffset + (ulong)first * ImageFormat.PageSize;
            if (run.IsBlock)
                _reads.Add((from, 0, count, [], ParentPages.Slice(run, all, first, count)));
            else if (_reads.Count > 0 && _reads[^1] is var last && last.Compressed is null && last.From == from && last.FileOffset + (ulong)last.Pages * ImageFormat.PageSize == offset)
            {
                last.Hashes.AddRange(hashes);
                _reads[^1] = last with { Pages = last.Pages + count };
            }
            else
                _reads.Add((from, offset, count, [.. hashes], null));
            _pieces.Add((run.Address + (ulong)first * ImageFormat.PageSize, count, _used, hashes));
            _used += count;
        }

        public void Flush(PageFileWriter file, List<PageRun> copied)
        {
            if (_used == 0)
                return;
            int at = 0;
            foreach (var (from, offset, pages, hashes, compressed) in _reads)
            {
                var into = Buffer.Span.Slice(at * ImageFormat.PageSize, pages * ImageFormat.PageSize);
                if (compressed is not null)
                    from.File.ReadRun(compressed, into);
                else
                    from.ReadRun(offset, into, hashes);
                at += pages;
            }
            Finish(copied);
            var full = Buffer;
            int length = _used * ImageFormat.PageSize;
            // As one block where the buffer is compressed or encrypted (the file is, if the checkpoint is).
            _write = Task.Run(() => file.Store(codec, full.Span[..length]));
            (_writing, _pieces) = (_pieces, _writing);
            _filling ^= 1;
            _reads.Clear();
            _used = 0;
        }

        /// <summary>Waits for the write under way and records its runs into <paramref name="copied"/> (null: only waits).</summary>
        public void Finish(List<PageRun>? copied)
        {
            if (_write is null)
                return;
            var write = _write;
            _write = null;
            if (copied is null)
            {
                try { write.Wait(); } catch (AggregateException) { } // the failure is the caller's to report already
                return;
            }
            var block = write.GetAwaiter().GetResult();
            foreach (var (address, pages, inBuffer, hashes) in _writing)
            {
                var piece = block.Describe(new PageRun { Address = address, Count = (ulong)pages, PageXxh3 = { hashes } }, inBuffer);
                if (copied.Count > 0 && copied[^1] is var previous && previous.Count + (ulong)pages <= (ulong)MemoryDumper.MaxRunPages
                    && !Boundary(address) && ParentPages.Continues(previous, piece))
                {
                    previous.Count += (ulong)pages;
                    previous.PageXxh3.AddRange(hashes);
                }
                else
                    copied.Add(piece);
            }
            _writing.Clear();
        }

        /// <summary>Whether a mapping starts at <paramref name="address"/> (a run may not go on across it).</summary>
        private bool Boundary(ulong address) =>
            mappings is not null && Array.BinarySearch(mappings, (address, 0UL), Comparer<(ulong Start, ulong End)>.Create((a, b) => a.Start.CompareTo(b.Start))) >= 0;
    }
}
