using Amber.Image;
using Amber.Image.Schema;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// The checkpoint an incremental one is taken after: a committed checkpoint beside the new one (in
/// the same store directory), whose page copies the new checkpoint refers to for every page that did
/// not change — its own, or those it referred to itself (<see cref="Sources"/>).
/// </summary>
public sealed class ParentCheckpoint
{
    private readonly CheckpointReader _reader;
    private readonly Dictionary<int, ProcessImage?> _images = [];
    private readonly Dictionary<int, ParentPages?> _memory = [];

    private ParentCheckpoint(CheckpointReader reader)
    {
        _reader = reader;
        Sources = new Sources(Path.GetFileName(reader.Directory), [.. reader.Manifest.Sources]);
    }

    public Sources Sources { get; }

    /// <summary>The size of the parent's process images: what the new checkpoint's, composed from them, about come to.</summary>
    public long ImageBytes => _reader.Manifest.Files.Where(f => ImageNames.IsProcess(f.Name)).Sum(f => (long)f.Size);

    public string Name => Path.GetFileName(_reader.Directory);

    /// <summary>
    /// Opens the parent, which must be a committed checkpoint in the same directory as
    /// <paramref name="newCheckpoint"/>, encrypted with <paramref name="key"/> if the new one is
    /// to be (and not encrypted if it is not): a chain has one key, or none.
    /// </summary>
    public static ParentCheckpoint Open(string parent, string newCheckpoint, ImageKey? key = null)
    {
        string dir = Path.TrimEndingDirectorySeparator(Path.GetFullPath(parent));
        string store = Path.GetDirectoryName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(newCheckpoint)))!;
        if (Path.GetDirectoryName(dir) != store)
            throw new CheckpointException($"the parent checkpoint {parent} must be beside the new one, in {store}");
        // What of it is read (its process images, its storage image) is checked as it is read, once.
        var reader = CheckpointReader.Open(dir, verifyPageFiles: false, key: key, messagesCheckedOnRead: true);
        if (reader.Encrypted && key is null)
            throw new CheckpointException($"the parent checkpoint {dir} is encrypted (key {reader.Manifest.KeyId}): an incremental checkpoint after it must be encrypted with the same key (--encrypt KEYFILE)");
        if (!reader.Encrypted && key is not null)
            throw new CheckpointException($"the parent checkpoint {dir} is not encrypted: an encrypted checkpoint cannot keep its pages in clear there (take a full one)");
        return new ParentCheckpoint(reader);
    }

    /// <summary>What the parent saved of a process with this pid; null if it had none.</summary>
    public ProcessImage? ImageOf(int pid)
    {
        if (!_images.TryGetValue(pid, out var image))
        {
            image = _reader.Manifest.Pids.Contains(pid) ? _reader.ReadMessage(ImageNames.Process(pid), ImageFileKind.Process, ProcessImage.Parser) : null;
            _images[pid] = image is { Zombie: false } ? image : null;
        }
        return _images[pid];
    }

    /// <summary>The parent's storage checkpoint, if it has one.</summary>
    public StorageImage? Storage() =>
        _reader.Manifest.Storage ? _reader.ReadMessage(ImageNames.Storage, ImageFileKind.Metadata, StorageImage.Parser) : null;

    /// <summary>The pages the parent kept of a process's memory.</summary>
    public ParentPages? MemoryOf(int pid)
    {
        if (!_memory.TryGetValue(pid, out var pages))
            _memory[pid] = pages = ImageOf(pid) is { } image ? new ParentPages(image.Mm.Pages, Sources.FromParent) : null;
        return pages;
    }

    /// <summary>
    /// Reads what the parent kept of every process it saved, before the processes are frozen: the
    /// freeze then lasts only as long as the copy of what changed.
    /// </summary>
    public void Preload()
    {
        foreach (int pid in _reader.Manifest.Pids)
            MemoryOf(pid);
    }

    /// <summary>
    /// The pages the parent kept of a shared object that process <paramref name="saver"/> saves now
    /// — only if the parent kept them in that same process's page file, the one the new runs name.
    /// </summary>
    public ParentPages? ObjectOf(int saver, Func<ProcessImage, IEnumerable<(IList<PageRun> Runs, int PagesOf)>> objects)
    {
        if (ImageOf(saver) is not { } image)
            return null;
        var runs = objects(image).Where(o => o.PagesOf == 0 || o.PagesOf == saver).Select(o => o.Runs).FirstOrDefault();
        return runs is null ? null : new ParentPages(runs, Sources.FromParent);
    }

    /// <summary>
    /// The sources the new checkpoint's runs really use, in the order of first use, renumbering the
    /// runs: a checkpoint lists only the earlier checkpoints it needs (what it does not list can go).
    /// </summary>
    public List<string> Prune(IEnumerable<ProcessImage> images, StorageImage? storage)
    {
        // Tens of thousands of runs under the freeze of a hand-over: plain loops, and the second only if a source goes.
        var runs = images.SelectMany(i => ImageRuns.Of(i).SelectMany(l => l.Runs)).Concat(StorageRuns(storage)).ToList();
        var used = new bool[Sources.Names.Count + 1];
        foreach (var run in runs)
            used[run.Source] = true;
        var renumber = new uint[used.Length];
        var names = new List<string>();
        for (int s = 1; s < used.Length; s++)
        {
            if (!used[s])
                continue;
            names.Add(Sources.Names[s - 1]);
            renumber[s] = (uint)names.Count;
        }
        if (names.Count < Sources.Names.Count)
            foreach (var run in runs.Where(r => r.Source != 0))
                run.Source = renumber[run.Source];
        return names;
    }

    public static IEnumerable<PageRun> StorageRuns(StorageImage? storage) =>
        storage?.Roots.SelectMany(r => r.Entries).SelectMany(e => e.Blocks) ?? [];
}
