using Amber.Image.Schema;
using Amber.Kernel.Files;
using Microsoft.Win32.SafeHandles;

namespace Amber.Checkpoint.Storage;

/// <summary>Paths of a storage checkpoint: relative to a declared root, and never out of it.</summary>
public static class StoragePaths
{
    /// <summary>Where a rollback stages the files it writes, inside the root (same file system: renamed into place). Never captured.</summary>
    public const string StagingPrefix = ".amber-rollback-";

    public static bool IsBelow(string path, string root) =>
        path.Length > root.Length && path.StartsWith(root, StringComparison.Ordinal) && (root.EndsWith('/') || path[root.Length] == '/');

    /// <summary>Whether <paramref name="path"/> is a root or below one (what a rollback will put back).</summary>
    public static bool Covers(IEnumerable<string> roots, string path) => roots.Any(r => path == r || IsBelow(path, r));

    public static string Relative(string root, string path) => path[(root.TrimEnd('/').Length + 1)..];

    public static string Join(string root, string relative) => relative.Length == 0 ? root : $"{root.TrimEnd('/')}/{relative}";

    /// <summary>A path an image may name below a root: '/'-separated names, none empty, "." or "..".</summary>
    public static bool IsSafeRelative(string relative) =>
        relative.Length < 4096 && !relative.Contains('\0') && relative.Split('/').All(n => n.Length is > 0 and < 256 && n != "." && n != "..");

    /// <summary>The file is the one saved and has not changed since (its ctime cannot be set back).</summary>
    public static bool Unchanged(StorageEntry saved, in FileStat now) =>
        now.IsRegular && now.Device == saved.Device && now.Inode == saved.Inode && now.CtimeNs == saved.CtimeNs
        && (ulong)now.Size == saved.Size && now.MtimeNs == saved.MtimeNs;

    public static SafeFileHandle OpenForReading(string path)
    {
        try
        {
            return FileOpener.OpenReadNoFollow(path);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or Kernel.KernelCallException)
        {
            throw new CheckpointException($"storage: cannot open {path}: {e.Message}", e);
        }
    }
}
