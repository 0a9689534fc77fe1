using Amber.Image.Schema;
using Amber.Native;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

public sealed partial class CheckpointWriter
{
    /// <summary>
    /// Completes every page file, fills <paramref name="manifest"/>'s format version, file list and
    /// key id (and feature "encryption" if the checkpoint is encrypted; the manifest stays in clear),
    /// makes every file durable, writes the manifest last and renames the temporary directory to
    /// <see cref="Directory"/> (replacing it if it is an empty directory).
    /// </summary>
    /// <exception cref="ImageStoreException">
    /// A write or fsync failed, an earlier write failed, or the target is no longer empty; nothing was
    /// committed. Only if the final fsync of the parent directory fails is the checkpoint already in
    /// place (but perhaps not yet durable).
    /// </exception>
    public void Commit(Manifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        lock (_lock)
        {
            ThrowIfNotWritable();
            if (_faulted)
            {
                throw new ImageStoreException($"cannot commit {Directory}: an earlier write failed");
            }
            try
            {
                WriteAndRename(manifest);
            }
            catch
            {
                _faulted = true;
                throw;
            }
            _committed = true;
        }
        // The rename itself must survive a crash too.
        ImageFiles.Fsync(Path.GetDirectoryName(Directory)!);
    }

    private void WriteAndRename(Manifest manifest)
    {
        foreach (PageFileWriter pageFile in _pageFiles)
        {
            (ulong size, ulong xxh3) = pageFile.Complete();
            _written.Add(pageFile.FileName, new ImageFileEntry { Name = pageFile.FileName, Size = size, Xxh3 = xxh3 });
        }
        foreach (string name in _written.Keys)
        {
            // Written earlier without fsync, so writeback overlapped the rest of the dump.
            ImageFiles.Fsync(Path.Join(TemporaryDirectory, name));
        }

        manifest.FormatVersion = ImageFormat.FormatVersion;
        manifest.KeyId = Key?.Id ?? "";
        manifest.RequiredFeatures.Remove(ImageFormat.EncryptionFeature);
        if (Key is not null)
        {
            manifest.RequiredFeatures.Add(ImageFormat.EncryptionFeature);
        }
        manifest.Files.Clear();
        manifest.Files.AddRange(_written.Values);
        HostKey.Sign(manifest);
        WriteManifestAndRename(manifest);
    }

    /// <summary>
    /// Commits a checkpoint received whole (<see cref="CheckpointStreamReader"/>): its files, put in
    /// <see cref="TemporaryDirectory"/> by the caller and made durable, are checked against
    /// <paramref name="manifest"/> (which is written as it is, signature included), then the manifest
    /// goes in and the directory is renamed, as for one written here. The page files named in
    /// <paramref name="dataToCome"/> have only their header yet: their data is checked once it is in
    /// (<see cref="IncomingPageFile.Complete"/>).
    /// </summary>
    /// <exception cref="ImageFormatException">A file is not what the manifest says, or the directory holds others.</exception>
    internal void CommitReceived(Manifest manifest, int fileCount, IReadOnlySet<string> dataToCome)
    {
        lock (_lock)
        {
            ThrowIfNotWritable();
            if (System.IO.Directory.EnumerateFileSystemEntries(TemporaryDirectory).Count() != fileCount)
            {
                throw ImageErrors.Format(TemporaryDirectory, $"holds other files than the {fileCount} its manifest lists");
            }
            foreach (ImageFileEntry entry in manifest.Files)
            {
                CheckpointReader.VerifyFile(Path.Join(TemporaryDirectory, entry.Name), entry, ImageLimits.Default, verifyPageFiles: !dataToCome.Contains(entry.Name));
            }
            try
            {
                WriteManifestAndRename(manifest);
            }
            catch
            {
                _faulted = true;
                throw;
            }
            _committed = true;
        }
        ImageFiles.Fsync(Path.GetDirectoryName(Directory)!);
    }

    private void WriteManifestAndRename(Manifest manifest)
    {
        string manifestPath = Path.Join(TemporaryDirectory, ImageFormat.ManifestFileName);
        using (SafeFileHandle handle = _createFile(manifestPath))
        {
            MessageFile.Write(handle, manifestPath, ImageFileKind.Manifest, manifest);
            ImageFiles.Fsync(handle, manifestPath);
        }
        ImageFiles.Fsync(TemporaryDirectory);

        int errno = ImageFiles.TryRename(TemporaryDirectory, Directory);
        if (errno is Interop.ENOTEMPTY or Interop.EEXIST)
        {
            throw new ImageStoreException($"cannot commit {Directory}: it is no longer empty (written by someone else meanwhile?)");
        }
        if (errno != 0)
        {
            throw ImageErrors.Errno($"rename {TemporaryDirectory} to", Directory, errno);
        }
    }
}
