using System.Security.Cryptography;
using Amber.Image.Schema;
using Amber.Native;
using Google.Protobuf;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

/// <summary>
/// Writes one checkpoint directory atomically. Call order: <see cref="Create(string, ImageKey, bool)"/> →
/// any number of <see cref="WriteMessage"/> / <see cref="CreatePageFile"/> (+ appends) →
/// <see cref="Commit(Schema.Manifest)"/> (or <see cref="Seal"/>, then <see cref="Commit()"/>) → <see cref="Dispose"/>. Everything goes to a sibling
/// <c>DIR.tmp-RANDOM</c> directory that is renamed to DIR only after every file and the manifest
/// are on disk, so DIR is either absent or complete. Dispose without Commit deletes the temporary
/// directory. WriteMessage and CreatePageFile may be called from several threads.
/// </summary>
public sealed partial class CheckpointWriter : IDisposable
{
    private readonly Lock _lock = new();
    private readonly Func<string, SafeFileHandle> _createFile;
    private readonly SortedDictionary<string, ImageFileEntry> _written = new(StringComparer.Ordinal);
    private readonly List<PageFileWriter> _pageFiles = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private bool _faulted;
    private readonly bool _directIo;
    private bool _sealed;
    private bool _durable;
    private bool _committed;
    private bool _disposed;

    internal CheckpointWriter(string directory, string temporaryDirectory, Func<string, SafeFileHandle> createFile, ImageKey? key = null, bool directIo = true)
    {
        _directIo = directIo;
        Directory = directory;
        TemporaryDirectory = temporaryDirectory;
        _createFile = createFile;
        Key = key;
    }

    /// <summary>
    /// The key every file but the manifest is encrypted with (AES-256-GCM: metadata files whole, page
    /// data block by block); null: in clear.
    /// </summary>
    public ImageKey? Key { get; }

    /// <summary>The checkpoint directory, which exists only after <see cref="Commit(Schema.Manifest)"/>.</summary>
    public string Directory { get; }

    /// <summary>Where files are written until <see cref="Commit(Schema.Manifest)"/>.</summary>
    public string TemporaryDirectory { get; }

    /// <summary>Starts a checkpoint that will become <paramref name="directory"/>.</summary>
    /// <param name="directory">The checkpoint directory to make.</param>
    /// <param name="key">Encrypt the checkpoint with this key (<see cref="Key"/>); null: in clear.</param>
    /// <param name="directIo">
    /// Page data written with direct I/O where the file system can (the default: a checkpoint of many
    /// GiB does not push the machine's page cache out); false: through the page cache, for a small
    /// checkpoint that is read again at once (a migration's last round) and made durable meanwhile.
    /// </param>
    /// <exception cref="ImageStoreException"><paramref name="directory"/> exists and is not an empty directory, or its parent is missing.</exception>
    public static CheckpointWriter Create(string directory, ImageKey? key = null, bool directIo = true) => Create(directory, ImageFiles.CreateNew, key, directIo);

    internal static CheckpointWriter Create(string directory, Func<string, SafeFileHandle> createFile, ImageKey? key = null, bool directIo = true)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        string target = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        string parent = Path.GetDirectoryName(target) ?? throw new ArgumentException($"{target} cannot be a checkpoint directory", nameof(directory));
        if (File.Exists(target))
        {
            throw new ImageStoreException($"{target} exists and is not a directory");
        }
        if (System.IO.Directory.Exists(target) && System.IO.Directory.EnumerateFileSystemEntries(target).Any())
        {
            throw new ImageStoreException($"{target} exists and is not empty; a checkpoint needs a new or empty directory");
        }
        if (!System.IO.Directory.Exists(parent))
        {
            throw new ImageStoreException($"cannot create {target}: parent directory {parent} does not exist");
        }
        for (int attempt = 0; ; attempt++)
        {
            string temporary = $"{target}.tmp-{Convert.ToHexStringLower(RandomNumberGenerator.GetBytes(6))}";
            if (ImageFiles.TryCreateDirectory(temporary))
            {
                return new CheckpointWriter(target, temporary, createFile, key, directIo);
            }
            if (attempt == 10)
            {
                throw new ImageStoreException($"cannot create a temporary directory beside {target}: names keep colliding");
            }
        }
    }

    /// <summary>Writes one metadata file: a header of the given kind and the message.</summary>
    /// <exception cref="ArgumentException">The name is not a single safe component, is reserved or was already used.</exception>
    /// <exception cref="ImageStoreException">The write failed; the checkpoint can no longer be committed.</exception>
    public void WriteMessage(string fileName, ImageFileKind kind, IMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        if (kind == ImageFileKind.Pages)
        {
            throw new ArgumentException("page files are written with CreatePageFile", nameof(kind));
        }
        string path = Reserve(fileName);
        try
        {
            (ulong size, ulong xxh3) = WriteMessageFile(path, kind, message);
            lock (_lock)
            {
                _written.Add(fileName, new ImageFileEntry { Name = fileName, Size = size, Xxh3 = xxh3 });
            }
        }
        catch
        {
            _faulted = true;
            throw;
        }
    }

    /// <summary>
    /// A copy of <paramref name="source"/> as it is now that shares its blocks (a reflink: btrfs, xfs;
    /// no data is copied), as an unnamed file beside the checkpoint that goes when the handle is
    /// closed. Null where the file systems cannot (another file system, no reflinks): after the
    /// first refusal, none is tried again.
    /// </summary>
    public SafeFileHandle? TrySnapshot(SafeFileHandle source)
    {
        if (!_snapshots)
        {
            return null;
        }
        SafeFileHandle copy;
        try
        {
            copy = ImageFiles.CreateUnnamed(TemporaryDirectory);
        }
        catch (ImageStoreException)
        {
            _snapshots = false; // no O_TMPFILE here
            return null;
        }
        if (Reflink.TryClone(source, 0, copy, 0, 0)) // length 0: to the end of the file
        {
            return copy;
        }
        copy.Dispose();
        _snapshots = false;
        return null;
    }

    private bool _snapshots = true;

    /// <summary>Creates a page file; the checkpoint writer completes and closes it.</summary>
    public PageFileWriter CreatePageFile(string fileName)
    {
        string path = Reserve(fileName);
        SafeFileHandle handle;
        try
        {
            handle = _createFile(path);
        }
        catch
        {
            _faulted = true;
            throw;
        }
        PageBuffer? gather;
        lock (_lock)
        {
            gather = _gatherAhead;
            _gatherAhead = null;
        }
        var writer = new PageFileWriter(handle, path, fileName, Key, _directIo, gather);
        lock (_lock)
        {
            _pageFiles.Add(writer);
        }
        return writer;
    }

    /// <summary>
    /// Memory for the page data to come, touched now: <paramref name="bytes"/> of page cache made (a
    /// file of zeros, deleted at once, so that its memory goes back to the kernel) and a buffer for
    /// the next page file's small writes (<see cref="CreatePageFile"/>). Memory the kernel gives a
    /// file for the first time costs a page fault every 4 KiB on these VMs (docs/kernel.md §13): ~10
    /// ms for the 4–5 MiB of a hand-over's last round. A checkpoint whose processes wait until it is
    /// written pays that before their freeze instead, and its page files take memory given back just
    /// before (the kernel hands out what was freed last first; not promised). Nothing with direct I/O.
    /// </summary>
    /// <exception cref="ImageStoreException">The file could not be made or written (the disk is full).</exception>
    public void Prefault(long bytes)
    {
        ThrowIfNotWritable();
        if (_directIo || bytes <= 0)
        {
            return;
        }
        var gather = new PageBuffer(PageFileWriter.GatherLength);
        var zeros = gather.Span;
        zeros.Clear(); // its pages touched too
        string path = Path.Join(TemporaryDirectory, ".page-cache");
        using (SafeFileHandle file = _createFile(path))
        {
            try
            {
                for (long at = 0; at < bytes; at += zeros.Length)
                {
                    RandomAccess.Write(file, zeros[..(int)Math.Min(zeros.Length, bytes - at)], at);
                }
            }
            catch (IOException e)
            {
                throw ImageErrors.Io("write", path, e);
            }
            finally
            {
                File.Delete(path);
            }
        }
        lock (_lock)
        {
            _gatherAhead = gather;
        }
    }

    private PageBuffer? _gatherAhead;

    /// <summary>
    /// Takes page file <paramref name="fromName"/> of the committed checkpoint <paramref name="from"/>
    /// into this one as <paramref name="fileName"/>, by a hard link: the two checkpoints share the
    /// file and no data is copied (a committed page file never changes). False where the file system
    /// cannot (another file system, no hard links, too many links to the file), or where
    /// <paramref name="from"/> is not encrypted with this checkpoint's key: copy the pages then.
    /// </summary>
    /// <exception cref="ImageFormatException"><paramref name="from"/> does not list <paramref name="fromName"/>.</exception>
    /// <exception cref="ImageStoreException">The link failed otherwise; the checkpoint can no longer be committed.</exception>
    public bool TryLinkPageFile(string fileName, CheckpointReader from, string fromName)
    {
        ArgumentNullException.ThrowIfNull(from);
        if (from.Manifest.KeyId != (Key?.Id ?? ""))
        {
            return false; // encrypted otherwise than this one: its pages are copied, and encrypted as this one is
        }
        ImageFileEntry entry = from.GetFileEntry(fromName);
        string existing = from.GetFilePath(fromName);
        string path = Reserve(fileName);
        int errno = ImageFiles.TryLink(existing, path);
        lock (_lock)
        {
            if (errno is Interop.EXDEV or Interop.EMLINK or Interop.EPERM or Interop.EOPNOTSUPP)
            {
                _names.Remove(fileName);
                return false;
            }
            if (errno != 0)
            {
                _faulted = true;
                throw ImageErrors.Errno($"link {existing} as", path, errno);
            }
            _written.Add(fileName, new ImageFileEntry { Name = fileName, Size = entry.Size, Xxh3 = entry.Xxh3 });
        }
        return true;
    }

    /// <summary>Deletes the temporary directory unless the checkpoint was committed. Never throws.</summary>
    public void Dispose()
    {
        lock (_lock)
        {
            if (_disposed)
            {
                return;
            }
            _disposed = true;
            foreach (PageFileWriter pageFile in _pageFiles)
            {
                pageFile.Close();
            }
            if (!_committed)
            {
                try
                {
                    System.IO.Directory.Delete(TemporaryDirectory, recursive: true);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    // Nothing to do: a leftover *.tmp-* directory is never mistaken for a checkpoint.
                }
            }
        }
    }

    private (ulong Size, ulong Xxh3) WriteMessageFile(string path, ImageFileKind kind, IMessage message)
    {
        using SafeFileHandle handle = _createFile(path);
        return MessageFile.Write(handle, path, kind, message, Key);
    }

    private string Reserve(string fileName)
    {
        FileNames.ThrowIfUnsafe(fileName, nameof(fileName));
        if (fileName == ImageFormat.ManifestFileName)
        {
            throw new ArgumentException($"{fileName} is written by Commit", nameof(fileName));
        }
        lock (_lock)
        {
            ThrowIfNotWritable();
            if (_sealed)
            {
                throw new InvalidOperationException($"checkpoint {Directory} is sealed: nothing more goes into it");
            }
            if (!_names.Add(fileName))
            {
                throw new ArgumentException($"{fileName} was already written to this checkpoint", nameof(fileName));
            }
        }
        return Path.Join(TemporaryDirectory, fileName);
    }

    private void ThrowIfNotWritable()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        if (_committed)
        {
            throw new InvalidOperationException($"checkpoint {Directory} is already committed");
        }
    }
}
