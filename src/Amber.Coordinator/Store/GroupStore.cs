using System.Globalization;
using Amber.Image;

namespace Amber.Coordinator.Store;

/// <summary>One committed checkpoint of a group's store.</summary>
/// <param name="Parent">The checkpoint an incremental one was taken after ("" for a full one).</param>
/// <param name="Sources">The earlier checkpoints whose pages it still refers to.</param>
/// <param name="Merged">Folded from a chain into a full checkpoint.</param>
public sealed record StoredCheckpoint(string Id, string Path, DateTimeOffset Created, int Processes, int Trees, long Bytes, string Parent, IReadOnlyList<string> Sources, bool Merged)
{
    /// <summary>One line for amber images: id, time, full or incremental (and on what), size.</summary>
    public string Describe() =>
        $"{Id}  {Created.ToLocalTime():yyyy-MM-dd HH:mm:ss}  {(Parent.Length == 0 ? (Merged ? "full (merged)" : "full") : $"incremental after {Parent}, uses {string.Join(" ", Sources)}")}  {Trees} tree(s), {Processes} process(es)  {Bytes / 1048576.0:0.0} MiB";
}

/// <summary>
/// A group's store: one directory per checkpoint, named ckpt-000001, ckpt-000002... in the order
/// they were taken; only directories with a valid manifest count (a torn one is never "latest").
/// </summary>
public sealed class GroupStore(string directory)
{
    private const string Prefix = "ckpt-";

    public string Directory { get; } = directory;

    /// <summary>The committed checkpoints, oldest first.</summary>
    public List<StoredCheckpoint> List()
    {
        var result = new List<StoredCheckpoint>();
        if (!System.IO.Directory.Exists(Directory))
            return result;
        // Exactly ckpt-NNNNNN: not a checkpoint being written (.tmp-) or merged (.merge-).
        foreach (var dir in System.IO.Directory.GetDirectories(Directory, Prefix + "*").Where(d => Number(d) > 0 && !System.IO.Path.GetFileName(d).Contains('.')).OrderBy(Number))
        {
            try
            {
                var manifest = CheckpointReader.Open(dir, verifyPageFiles: false).Manifest;
                long bytes = new DirectoryInfo(dir).EnumerateFiles().Sum(f => f.Length);
                result.Add(new StoredCheckpoint(System.IO.Path.GetFileName(dir), dir, DateTimeOffset.FromUnixTimeMilliseconds(manifest.CreatedUnixMs),
                    manifest.Pids.Count, Math.Max(1, manifest.TreeRoots.Count), bytes, manifest.Parent, [.. manifest.Sources], manifest.Merged));
            }
            catch (Exception e) when (e is ImageFormatException or ImageStoreException or IOException)
            {
                // Not committed, or damaged: not a checkpoint to restore.
            }
        }
        return result;
    }

    public StoredCheckpoint? Latest() => List().LastOrDefault();

    public StoredCheckpoint? Find(string id) => List().FirstOrDefault(c => c.Id == id);

    /// <summary>Where the next checkpoint goes: one past the highest number used, committed or not.</summary>
    public string NextPath()
    {
        System.IO.Directory.CreateDirectory(Directory);
        int next = System.IO.Directory.GetFileSystemEntries(Directory, Prefix + "*").Select(Number).DefaultIfEmpty(0).Max() + 1;
        return System.IO.Path.Combine(Directory, Prefix + next.ToString("D6", CultureInfo.InvariantCulture));
    }

    private static int Number(string path)
    {
        var name = System.IO.Path.GetFileName(path);
        int dot = name.IndexOf('.', StringComparison.Ordinal); // ckpt-000003.tmp-...: a checkpoint being written
        var digits = name.AsSpan(Prefix.Length, (dot < 0 ? name.Length : dot) - Prefix.Length);
        return int.TryParse(digits, NumberStyles.None, CultureInfo.InvariantCulture, out int n) ? n : 0;
    }
}
