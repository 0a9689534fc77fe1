namespace Amber.Checkpoint;

/// <summary>File names inside a checkpoint directory.</summary>
public static class ImageNames
{
    public static string Process(int pid) => $"process-{pid}.img";

    /// <summary>Whether a file of a checkpoint is a process's image (<see cref="Process"/>).</summary>
    public static bool IsProcess(string name) => name.StartsWith("process-", StringComparison.Ordinal);

    public static string Pages(int pid) => $"pages-{pid}.img";

    /// <summary>
    /// What several trees of a group share (pipes, socket pairs, shared memory, open files): no
    /// process of the checkpoint is their common ancestor, so the restore recreates them first, in a
    /// process that is the parent of every tree root until they run (a ProcessImage with pid 0).
    /// </summary>
    public const string Forest = "forest.img";

    /// <summary>The storage checkpoint (StorageImage), when the checkpoint has one (Manifest.storage).</summary>
    public const string Storage = "storage.img";

    /// <summary>The mounts of a mount namespace of their own (MountsImage), when they had one (NamespacesImage.mount).</summary>
    public const string Mounts = "mounts.img";

    /// <summary>The contents of the storage checkpoint's files: blocks in page runs, like memory.</summary>
    public const string StoragePages = "storage-pages.img";

    public static readonly string AmberVersion =
        typeof(ImageNames).Assembly.GetName().Version?.ToString(3) ?? "0.0.0";
}
