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
    /// <see cref="Directory"/> (replacing it if it is an empty directory): <see cref="Seal"/>, then
    /// <see cref="Commit()"/>.
    /// </summary>
    /// <exception cref="ImageStoreException">
    /// A write or fsync failed, an earlier write failed, or the target is no longer empty; nothing was
    /// committed. Only if the final fsync of the parent directory fails is the checkpoint already in
    /// place (but perhaps not yet durable).
    /// </exception>
    public void Commit(Manifest manifest)
    {
        Seal(manifest);
        Commit();
    }

    /// <summary>
    /// The first half of <see cref="Commit(Manifest)"/>: every file complete and the manifest written,
    /// in <see cref="TemporaryDirectory"/>, which is then a whole checkpoint that can be read (and
    /// sent) before it is durable or in place. Nothing more may be written to it.
    /// </summary>
    /// <exception cref="ImageStoreException">A write failed, or an earlier one did; the checkpoint can no longer be committed.</exception>
    public void Seal(Manifest manifest)
    {
        ArgumentNullException.ThrowIfNull(manifest);
        lock (_lock)
        {
            ThrowIfNotWritable();
            if (_faulted)
            {
                throw new ImageStoreException($"cannot commit {Directory}: an earlier write failed");
            }
            if (_sealed)
            {
                throw new InvalidOperationException($"checkpoint {Directory} is sealed already");
            }
            try
            {
                foreach (PageFileWriter pageFile in _pageFiles)
                {
                    (ulong size, ulong xxh3) = pageFile.Complete(durable: false);
                    _written.Add(pageFile.FileName, new ImageFileEntry { Name = pageFile.FileName, Size = size, Xxh3 = xxh3 });
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
                WriteManifest(manifest, durable: false);
            }
            catch
            {
                _faulted = true;
                throw;
            }
            _sealed = true;
        }
    }

    /// <summary>
    /// The durable part of the second half of <see cref="Commit(Manifest)"/>, on its own: every file of
    /// the sealed checkpoint and its directory on disk, so that only the rename is left (which
    /// <see cref="Commit()"/> does, calling this first if it was not). May run while the sealed
    /// checkpoint is read.
    /// </summary>
    /// <exception cref="ImageStoreException">An fsync failed; the checkpoint can no longer be committed.</exception>
    public void MakeDurable()
    {
        lock (_lock)
        {
            ThrowIfNotWritable();
            if (!_sealed || _faulted)
            {
                throw new InvalidOperationException($"checkpoint {Directory} is not sealed, or an earlier write failed");
            }
            if (_durable)
            {
                return;
            }
            try
            {
                // Written without fsync, so writeback overlapped the rest of the dump (or a hand-over).
                foreach (string name in _written.Keys.Append(ImageFormat.ManifestFileName))
                {
                    ImageFiles.Fsync(Path.Join(TemporaryDirectory, name));
                }
                ImageFiles.Fsync(TemporaryDirectory);
            }
            catch
            {
                _faulted = true;
                throw;
            }
            _durable = true;
        }
    }

    /// <summary>The second half of <see cref="Commit(Manifest)"/>, after <see cref="Seal"/>: durable, then in place.</summary>
    /// <exception cref="ImageStoreException">As <see cref="Commit(Manifest)"/>.</exception>
    public void Commit()
    {
        MakeDurable();
        lock (_lock)
        {
            ThrowIfNotWritable();
            try
            {
                Rename();
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

    /// <summary>
    /// Commits a checkpoint received whole (<see cref="CheckpointStreamReader"/>): its files, put in
    /// <see cref="TemporaryDirectory"/> by the caller and made durable, are checked against
    /// <paramref name="manifest"/> (which is written as it is, signature included), then the manifest
    /// goes in and the directory is renamed, as for one written here. The page files named in
    /// <paramref name="dataToCome"/> have only their header yet: their data is checked once it is in
    /// (<see cref="IncomingPageFile.Complete"/>).
    /// </summary>
    /// <exception cref="ImageFormatException">A file is not what the manifest says, or the directory holds others.</exception>
    internal void CommitReceived(Manifest manifest, int fileCount, IReadOnlySet<string> dataToCome, bool durable)
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
                WriteManifest(manifest, durable);
                if (durable)
                {
                    ImageFiles.Fsync(TemporaryDirectory);
                }
                Rename();
            }
            catch
            {
                _faulted = true;
                throw;
            }
            _committed = true;
        }
        if (durable)
        {
            ImageFiles.Fsync(Path.GetDirectoryName(Directory)!);
        }
    }

    private void WriteManifest(Manifest manifest, bool durable)
    {
        string manifestPath = Path.Join(TemporaryDirectory, ImageFormat.ManifestFileName);
        using SafeFileHandle handle = _createFile(manifestPath);
        MessageFile.Write(handle, manifestPath, ImageFileKind.Manifest, manifest);
        if (durable)
        {
            ImageFiles.Fsync(handle, manifestPath);
        }
    }

    private void Rename()
    {
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
