using System.Globalization;
using Amber.Image;

namespace Amber.Coordinator.Store;

/// <summary>One committed checkpoint of a group's store.</summary>
/// <param name="Parent">The checkpoint an incremental one was taken after ("" for a full one).</param>
/// <param name="Sources">The earlier checkpoints whose pages it still refers to.</param>
/// <param name="Merged">Folded from a chain into a full checkpoint.</param>
/// <param name="Storage">It holds a storage checkpoint (the group's files at the same cut).</param>
public sealed record StoredCheckpoint(string Id, string Path, DateTimeOffset Created, int Processes, int Trees, long Bytes, string Parent, IReadOnlyList<string> Sources, bool Merged,
    bool Storage)
{
    /// <summary>One line for amber images: id, time, full or incremental (and on what), size.</summary>
    public string Describe() =>
        $"{Id}  {Created.ToLocalTime():yyyy-MM-dd HH:mm:ss}  {(Parent.Length == 0 ? (Merged ? "full (merged)" : "full") : $"incremental after {Parent}, uses {string.Join(" ", Sources)}")}  {Trees} tree(s), {Processes} process(es)  {Bytes / 1048576.0:0.0} MiB";
}

/// <summary>
/// A checkpoint being handed over: whole and sealed in <paramref name="Path"/> (its <c>DIR.tmp-*</c>),
/// being made durable, and committed as <paramref name="Id"/> once the hand-over has answered.
/// </summary>
public sealed record SealedCheckpoint(string Id, string Path);

/// <summary>A directory of a store that has a manifest: a checkpoint, or one that cannot be read (<paramref name="Problem"/>).</summary>
public sealed record StoreEntry(string Name, string Path, StoredCheckpoint? Checkpoint, string? Problem);

/// <summary>
/// What a store holds: its checkpoints in the order they were taken (a chain's earlier ones first),
/// and the names of its directories that are not checkpoints (<paramref name="Unfinished"/>: being
/// written or merged, or left by an interrupted checkpoint, merge or removal).
/// </summary>
public sealed record StoreContents(IReadOnlyList<StoreEntry> Entries, IReadOnlyList<string> Unfinished)
{
    /// <summary>The checkpoints that can be read, in order.</summary>
    public List<StoredCheckpoint> Checkpoints => [.. Entries.Where(e => e.Checkpoint is not null).Select(e => e.Checkpoint!)];

    /// <summary>amber images: a line per checkpoint, in order; the latest one that can be read said so, a damaged one too.</summary>
    public List<string> Describe()
    {
        var latest = Checkpoints.LastOrDefault();
        return [.. Entries.Select(e => e.Checkpoint is { } c
            ? c.Describe() + (c == latest ? "  (latest)" : "")
            : $"{e.Name}  DAMAGED: {e.Problem} (see amber verify)")];
    }

    /// <summary>Why a directory of <see cref="Unfinished"/> is not a checkpoint, for a user.</summary>
    public static string WhyUnfinished(string name) =>
        name.Contains(".tmp-", StringComparison.Ordinal) ? "a checkpoint being written, or left by an interrupted one"
        : name.Contains(".merge-", StringComparison.Ordinal) ? "a merge being written, or left by an interrupted one"
        : $"no {ImageFormat.ManifestFileName}: left by an interrupted checkpoint?";
}

/// <summary>
/// A store: one directory per checkpoint (a group's are named ckpt-000001, ckpt-000002...; one made by
/// hand may have any name). A checkpoint is any directory with a manifest; a directory being written
/// (*.tmp-*) or merged (*.merge-*) never is, even once its manifest is in. Checkpoints are in the
/// order they were taken (the manifest's time, then the name): an incremental one comes after the
/// checkpoints it refers to, whatever the names.
/// </summary>
public sealed class GroupStore(string directory)
{
    private const string Prefix = "ckpt-";

    public string Directory { get; } = directory;

    /// <summary>The checkpoints that can be read, oldest first (a damaged one is never "latest").</summary>
    public List<StoredCheckpoint> List() => Scan().Checkpoints;

    /// <summary>Everything the store holds: checkpoints (damaged ones too) in order, and what is not one.</summary>
    public StoreContents Scan()
    {
        var entries = new List<(StoreEntry Entry, DateTimeOffset Taken)>();
        var unfinished = new List<string>();
        if (!System.IO.Directory.Exists(Directory))
            return new StoreContents([], []);
        foreach (var dir in System.IO.Directory.GetDirectories(Directory).Order(StringComparer.Ordinal))
        {
            string name = System.IO.Path.GetFileName(dir);
            string manifest = System.IO.Path.Join(dir, ImageFormat.ManifestFileName);
            if (!CheckpointStore.IsCommitted(dir))
            {
                unfinished.Add(name);
                continue;
            }
            try
            {
                var checkpoint = Read(dir);
                entries.Add((new StoreEntry(name, dir, checkpoint, null), checkpoint.Created));
            }
            catch (Exception e) when (e is ImageFormatException or ImageStoreException or IOException)
            {
                // Its own time cannot be read: when its manifest was written stands in for it.
                entries.Add((new StoreEntry(name, dir, null, e.Message.ReplaceLineEndings(" ")), File.GetLastWriteTimeUtc(manifest)));
            }
        }
        return new StoreContents([.. entries.OrderBy(e => e.Taken).ThenBy(e => e.Entry.Name, StringComparer.Ordinal).Select(e => e.Entry)], unfinished);
    }

    public StoredCheckpoint? Latest() => List().LastOrDefault();

    /// <summary>
    /// The latest checkpoint a group can be brought back to as it was: for a group with storage, the
    /// latest that holds it too. A migration that leaves shared storage in place takes checkpoints
    /// without it (on both nodes); restoring one of those would put the memory back and leave the
    /// files as they are now, which no longer agree with it.
    /// </summary>
    public StoredCheckpoint? LatestWhole(bool withStorage) => List().LastOrDefault(c => c.Storage || !withStorage);

    /// <summary>Why <see cref="LatestWhole"/> found none.</summary>
    public static string NoneWhole(GroupStore store, bool withStorage) =>
        withStorage && store.Latest() is { } latest
            ? $"no checkpoint holds its storage yet ({latest.Id}, its latest, was taken by a migration that left the storage in place, shared: restoring it would not put the files back)"
            : "no checkpoint yet";

    public StoredCheckpoint? Find(string id) => List().FirstOrDefault(c => c.Id == id);

    /// <summary>
    /// Checkpoint <paramref name="id"/> and every one it needs (its sources, theirs...), oldest first,
    /// leaving out those in <paramref name="except"/>: what a copy of it elsewhere needs.
    /// </summary>
    /// <exception cref="ImageStoreException">One of them is not (or no longer) a checkpoint of the store.</exception>
    /// <param name="sealedAt">
    /// Where <paramref name="id"/> is if it is not committed yet: a hand-over's checkpoint, sealed and
    /// read in its temporary directory while it is made durable (<c>CheckpointOptions.BeforeEnd</c>).
    /// </param>
    public List<StoredCheckpoint> Chain(string id, IReadOnlySet<string>? except = null, string? sealedAt = null)
    {
        // Only the checkpoints followed are read, and of them only the manifests (their files' sizes
        // checked): whoever receives them checks every byte against the manifests. A hand-over's last
        // checkpoint is sent while its group is frozen; reading the whole store first was 7-9 ms of it.
        var needed = new Dictionary<string, StoredCheckpoint>(StringComparer.Ordinal);
        var pending = new Stack<string>([id]);
        while (pending.TryPop(out var next))
        {
            if (except?.Contains(next) == true || needed.ContainsKey(next))
                continue;
            string dir = next == id && sealedAt is not null ? sealedAt : System.IO.Path.Join(Directory, next);
            try
            {
                // A name from a manifest: never a path out of the store.
                if (next.Length == 0 || next != System.IO.Path.GetFileName(next) || next is "." or ".." || (dir != sealedAt && !CheckpointStore.IsCommitted(dir)))
                    throw new ImageStoreException("it is not a committed checkpoint of the store");
                needed[next] = Read(dir, messagesCheckedOnRead: true) with { Id = next };
            }
            catch (Exception e) when (e is ImageFormatException or ImageStoreException or IOException)
            {
                throw new ImageStoreException($"checkpoint {next} of the store {Directory} cannot be read ({e.Message})");
            }
            foreach (string source in needed[next].Sources)
                pending.Push(source);
        }
        // Oldest first, as listed (the sealed one is the newest).
        return [.. needed.Values.OrderBy(c => c.Id == id && sealedAt is not null).ThenBy(c => c.Created).ThenBy(c => c.Id, StringComparer.Ordinal)];
    }

    /// <summary>Where the next checkpoint goes: one past the highest number used, committed or not.</summary>
    public string NextPath()
    {
        System.IO.Directory.CreateDirectory(Directory);
        int next = System.IO.Directory.GetFileSystemEntries(Directory, Prefix + "*").Select(Number).DefaultIfEmpty(0).Max() + 1;
        return System.IO.Path.Combine(Directory, Prefix + next.ToString("D6", CultureInfo.InvariantCulture));
    }

    /// <param name="messagesCheckedOnRead">Its metadata files' checksums left to whoever reads them (a listing checks them: a damaged checkpoint is never "latest").</param>
    private static StoredCheckpoint Read(string dir, bool messagesCheckedOnRead = false)
    {
        // Restoring it checks its signature.
        var manifest = CheckpointReader.Open(dir, verifyPageFiles: false, trust: true, messagesCheckedOnRead: messagesCheckedOnRead).Manifest;
        long bytes = new DirectoryInfo(dir).EnumerateFiles().Sum(f => f.Length);
        return new StoredCheckpoint(System.IO.Path.GetFileName(dir), dir, DateTimeOffset.FromUnixTimeMilliseconds(manifest.CreatedUnixMs),
            manifest.Pids.Count, Math.Max(1, manifest.TreeRoots.Count), bytes, manifest.Parent, [.. manifest.Sources], manifest.Merged, manifest.Storage);
    }

    private static int Number(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        int dot = name.IndexOf('.', StringComparison.Ordinal); // ckpt-000003.tmp-...: a checkpoint being written
        var digits = name.AsSpan(Prefix.Length, (dot < 0 ? name.Length : dot) - Prefix.Length);
        return int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : 0;
    }
}
