namespace Amber.Image;

/// <summary>
/// Operations on the checkpoints of a store (a directory of checkpoint directories) that must
/// survive a crash at any moment: a checkpoint replaced by an equivalent one in one atomic step, and
/// checkpoints removed so that a reader never meets half of one.
/// </summary>
public static class CheckpointStore
{
    /// <summary>A checkpoint being written (DIR.tmp-*) or merged (DIR.merge-*, and its own .tmp-): not one yet, or no longer.</summary>
    public static bool IsBeingWritten(string name) =>
        name.Contains(".tmp-", StringComparison.Ordinal) || name.Contains(".merge-", StringComparison.Ordinal);

    /// <summary>Whether the directory <paramref name="dir"/> of a store is a checkpoint: not being written or merged, and its manifest in.</summary>
    public static bool IsCommitted(string dir) =>
        !IsBeingWritten(Path.GetFileName(dir)) && File.Exists(Path.Join(dir, ImageFormat.ManifestFileName));

    /// <summary>
    /// Puts the committed checkpoint <paramref name="replacement"/> in the place of
    /// <paramref name="checkpoint"/> atomically (renameat2 RENAME_EXCHANGE), makes that durable,
    /// then removes the old one. A crash before the swap leaves the old checkpoint, after it the new
    /// one; the leftover directory is only ever one a reader ignores.
    /// </summary>
    public static void Replace(string checkpoint, string replacement)
    {
        ImageFiles.Exchange(replacement, checkpoint);
        ImageFiles.Fsync(Path.GetDirectoryName(Path.GetFullPath(checkpoint))!);
        Delete(replacement);
    }

    /// <summary>
    /// Makes the committed checkpoint <paramref name="checkpoint"/> durable: every file in it, itself
    /// and its place in its parent directory (for one committed from the page cache:
    /// <c>CheckpointStreamReader.Begin(durable: false)</c>), but for the files named in
    /// <paramref name="dataToCome"/>, made durable once their data is in (<see cref="IncomingPageFile.Complete"/>).
    /// </summary>
    /// <exception cref="ImageStoreException">An fsync failed (the disk, or the checkpoint went away).</exception>
    public static void MakeDurable(string checkpoint, IReadOnlyCollection<string>? dataToCome = null)
    {
        try
        {
            foreach (string file in Directory.EnumerateFiles(checkpoint))
            {
                if (dataToCome?.Contains(Path.GetFileName(file)) != true)
                    ImageFiles.Fsync(file);
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw ImageErrors.Io("fsync the files of", checkpoint, e);
        }
        ImageFiles.Fsync(checkpoint);
        ImageFiles.Fsync(Path.GetDirectoryName(Path.GetFullPath(checkpoint))!);
    }

    /// <summary>
    /// Removes a checkpoint: its manifest first (from then on it is not a checkpoint for anyone),
    /// then the rest. A crash in between leaves a directory without a manifest, which readers ignore
    /// and a later call removes.
    /// </summary>
    public static void Delete(string checkpoint)
    {
        string manifest = Path.Join(checkpoint, ImageFormat.ManifestFileName);
        try
        {
            if (File.Exists(manifest))
            {
                File.Delete(manifest);
                ImageFiles.Fsync(checkpoint);
            }
            Directory.Delete(checkpoint, recursive: true);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw ImageErrors.Io("remove", checkpoint, e);
        }
    }
}
