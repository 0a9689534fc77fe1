using System.Diagnostics;
using Amber.Image;
using Amber.Checkpoint.Memory;
using Amber.Image.Schema;

namespace Amber.Checkpoint;

/// <summary>What a merge did.</summary>
/// <param name="Removed">The earlier checkpoints of the chain that nothing needs any more, removed.</param>
public sealed record MergeResult(string Checkpoint, long Pages, long Bytes, IReadOnlyList<string> Removed, TimeSpan Total);

/// <summary>
/// Folds an incremental checkpoint and the earlier checkpoints it refers to into one full
/// checkpoint with the same content and the same name: every page kept elsewhere is copied in
/// (checked against its checksum on the way), the result is written beside it, committed and
/// verified (all but the page data, just checked), then swapped into place atomically; only then are the earlier checkpoints of its chain
/// that no other checkpoint needs removed. Interrupted at any moment (kill -9 included), the store
/// holds either the old chain or the merged checkpoint, and every checkpoint it lists still restores.
/// </summary>
public static class CheckpointMerger
{
    private const int ChunkPages = 1024;

    public static MergeResult Merge(string checkpoint, CancellationToken cancel = default)
    {
        var clock = Stopwatch.StartNew();
        var trace = new PhaseTrace("merge");
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
            // Two buffers: one is filled from the chain while the other is written out.
            PageBuffer[] buffer = [new(ChunkPages * ImageFormat.PageSize), new(ChunkPages * ImageFormat.PageSize)];
            var spans = new Dictionary<uint, PageBuffer>(); // what each checkpoint of the chain is read into
            foreach (var image in forest is null ? images : [.. images, forest])
            {
                cancel.ThrowIfCancellationRequested();
                if (image.Zombie)
                    continue;
                // A run of memory never spans two mappings: joined runs stay inside one.
                var mappings = image.Mm.Vmas.Select(v => (v.Start, v.End)).OrderBy(v => v.Start).ToArray();
                foreach (var (owner, runs) in RunLists(image))
                {
                    int pid = owner == 0 ? image.Pid : owner;
                    if (!files.TryGetValue(pid, out var file))
                        files[pid] = file = writer.CreatePageFile(ImageNames.Pages(pid));
                    // A chain saved compressed stays compressed (with the codec its memory was saved with).
                    var codec = runs == image.Mm.Pages ? runs.Select(r => r.Codec).FirstOrDefault(c => c != Codec.None) : Codec.None;
                    pages += CopyIn(reader, ImageNames.Pages(pid), runs, file, buffer, spans, runs == image.Mm.Pages ? mappings : null, codec, cancel);
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
                    pages += CopyIn(reader, ImageNames.StoragePages, entry.Blocks, file ??= writer.CreatePageFile(ImageNames.StoragePages), buffer, spans, null, Codec.None, cancel);
                writer.WriteMessage(ImageNames.Storage, ImageFileKind.Metadata, storage);
            }
            var manifest = old.Clone();
            manifest.Parent = "";
            manifest.Sources.Clear();
            manifest.Merged = true;
            manifest.Files.Clear();
            trace.Mark("pages copied");
            writer.Commit(manifest);
            trace.Mark("commit");
        }
        try
        {
            // Every page was checked against its checksum as it was copied in; what it became is checked here.
            if (CheckpointVerifier.Verify(merged, pageData: false) is { } problem)
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

    /// <summary>
    /// Copies every run's pages, wherever they are kept, into <paramref name="file"/>, checking each
    /// against its checksum on the way; the runs then point there. A long chain leaves the runs
    /// fragmented (every checkpoint splits them at the pages written since), so the copy goes a
    /// buffer at a time: runs that follow each other where they are kept are read together, the
    /// buffer is appended in one write, and the new runs are joined again (up to the size a run
    /// has when first written, and inside one of <paramref name="mappings"/> where given). With a
    /// <paramref name="codec"/>, each buffer is stored as one compressed block, its runs slices of it.
    /// </summary>
    private static long CopyIn(CheckpointReader reader, string fileName, IList<PageRun> runs, PageFileWriter file, PageBuffer[] buffers,
        Dictionary<uint, PageBuffer> spans, (ulong Start, ulong End)[]? mappings, Codec codec, CancellationToken cancel)
    {
        // Each checkpoint of the chain is read in the order its pieces are needed (address order,
        // the order it wrote them in), through a window that reads ahead in large spans.
        var plans = runs.Where(r => r.Codec == Codec.None).GroupBy(r => r.Source)
            .ToDictionary(g => g.Key, g => g.Select(r => (r.FileOffset, r.Count * (ulong)ImageFormat.PageSize)));
        var sources = new Dictionary<uint, PageWindow>();
        var batch = new Batch(buffers, mappings, codec);
        var copied = new List<PageRun>(runs.Count);
        long pages = 0;
        try
        {
            foreach (var run in runs)
            {
                cancel.ThrowIfCancellationRequested();
                if (!sources.TryGetValue(run.Source, out var from))
                {
                    if (!spans.TryGetValue(run.Source, out var span))
                        spans[run.Source] = span = new PageBuffer(PageWindow.SpanBytes);
                    sources[run.Source] = from = new PageWindow(reader.OpenPageFile(fileName, run.Source), plans.GetValueOrDefault(run.Source) ?? [], span);
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
        foreach (var run in copied)
            runs.Add(run);
        return pages;
    }

    /// <summary>
    /// Pages gathered in a buffer: the reads that fill it, and the runs they become. A full buffer is
    /// written out in the background while the next one is filled.
    /// </summary>
    private sealed class Batch(PageBuffer[] buffers, (ulong Start, ulong End)[]? mappings, Codec codec)
    {
        private const int PageSize = ImageFormat.PageSize;
        // Uncompressed pages that follow each other in one file are read at once; a compressed slice alone.
        private readonly List<(PageWindow From, ulong FileOffset, int Pages, List<ulong> Hashes, PageRun? Compressed)> _reads = [];
        private List<(ulong Address, int Pages, int At, ArraySegment<ulong> Hashes)> _pieces = [];
        private List<(ulong Address, int Pages, int At, ArraySegment<ulong> Hashes)> _writing = [];
        private Task<(ulong Offset, uint StoredLength)>? _write; // of the other buffer, holding _writing
        private int _filling;
        private int _used; // pages

        private PageBuffer Buffer => buffers[_filling];

        public int Room => Buffer.Length / PageSize - _used;

        /// <summary>Pages [first, first + count) of <paramref name="run"/> (its checksums <paramref name="all"/>), kept in <paramref name="from"/>.</summary>
        public void Add(PageWindow from, PageRun run, ulong[] all, int first, int count)
        {
            var hashes = new ArraySegment<ulong>(all, first, count);
            ulong offset = run.FileOffset + (ulong)first * PageSize;
            if (run.Codec != Codec.None)
                _reads.Add((from, 0, count, [], ParentPages.Slice(run, all, first, count)));
            else if (_reads.Count > 0 && _reads[^1] is var last && last.Compressed is null && last.From == from && last.FileOffset + (ulong)last.Pages * PageSize == offset)
            {
                last.Hashes.AddRange(hashes);
                _reads[^1] = last with { Pages = last.Pages + count };
            }
            else
                _reads.Add((from, offset, count, [.. hashes], null));
            _pieces.Add((run.Address + (ulong)first * PageSize, count, _used, hashes));
            _used += count;
        }

        public void Flush(PageFileWriter file, List<PageRun> copied)
        {
            if (_used == 0)
                return;
            int at = 0;
            foreach (var (from, offset, pages, hashes, compressed) in _reads)
            {
                var into = Buffer.Span.Slice(at * PageSize, pages * PageSize);
                if (compressed is not null)
                    from.File.ReadRun(compressed, into);
                else
                    from.ReadRun(offset, into, hashes);
                at += pages;
            }
            Finish(copied);
            var full = Buffer;
            int length = _used * PageSize;
            _write = codec == Codec.None
                ? Task.Run(() => (file.AppendData(full.Span[..length]), 0u))
                : Task.Run(() => file.AppendCompressed(codec, full.Span[..length]));
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
            var (written, storedLength) = write.GetAwaiter().GetResult();
            foreach (var (address, pages, inBuffer, hashes) in _writing)
            {
                var piece = codec == Codec.None
                    ? new PageRun { Address = address, Count = (ulong)pages, FileOffset = written + (ulong)inBuffer * PageSize, PageXxh3 = { hashes } }
                    : new PageRun { Address = address, Count = (ulong)pages, FileOffset = written, Codec = codec, StoredLength = storedLength, Skip = (uint)inBuffer, PageXxh3 = { hashes } };
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
