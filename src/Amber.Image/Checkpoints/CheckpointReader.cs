using Amber.Image.Schema;
using Google.Protobuf;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

/// <summary>
/// A committed checkpoint directory whose manifest and files have been validated. Only files
/// listed in the manifest can be read, and none through a symlink. Thread-safe.
/// </summary>
public sealed partial class CheckpointReader
{
    private readonly Dictionary<string, ImageFileEntry> _files;

    private CheckpointReader(string directory, Manifest manifest, Dictionary<string, ImageFileEntry> files, ImageLimits limits, ImageKey? key)
    {
        Directory = directory;
        Manifest = manifest;
        Limits = limits;
        _files = files;
        Key = key;
    }

    /// <summary>The key the checkpoint is encrypted with, if it is and the key was given; null otherwise.</summary>
    public ImageKey? Key { get; }

    /// <summary>Whether the checkpoint is encrypted (its manifest names a key: <c>Manifest.KeyId</c>).</summary>
    public bool Encrypted => Manifest.KeyId.Length > 0;

    /// <summary>The checkpoint directory, as a full path.</summary>
    public string Directory { get; }

    /// <summary>The validated manifest: the checkpoint's files, what it is of, the checkpoint it follows.</summary>
    public Manifest Manifest { get; }

    /// <summary>The bounds everything read from this checkpoint is held to.</summary>
    public ImageLimits Limits { get; }

    /// <summary>
    /// Reads and validates <c>manifest.img</c> and checks every listed file: a safe name, a regular
    /// file, the recorded size and checksum. Page file data is hashed only when
    /// <paramref name="verifyPageFiles"/> (their headers are always checked).
    /// </summary>
    /// <exception cref="ImageFormatException">No checkpoint there, or it is corrupt, truncated, foreign or incompatible.</exception>
    /// <exception cref="ImageStoreException">An I/O error.</exception>
    /// <param name="directory">The checkpoint directory (the one holding <c>manifest.img</c>).</param>
    /// <param name="limits">Bounds on what is read; <see cref="ImageLimits.Default"/> if null.</param>
    /// <param name="verifyPageFiles">Whether to hash the page data of page files too (slow on large checkpoints).</param>
    /// <param name="trust">
    /// Read a checkpoint this host did not sign (<see cref="HostKey"/>): another machine's, or forged.
    /// Without it such a checkpoint, or one it takes pages from, is refused.
    /// </param>
    /// <param name="key">
    /// The key of an encrypted checkpoint (and of the checkpoints it takes pages from). Without it,
    /// only the manifest of an encrypted checkpoint can be read; another key is refused here.
    /// </param>
    /// <param name="messagesCheckedOnRead">
    /// Check a metadata file against the manifest's checksum when it is read (<see cref="ReadMessage"/>),
    /// in the same pass, rather than here: a restore reads each once, and a process image is MiBs.
    /// Its size is still checked here.
    /// </param>
    /// <exception cref="ImageKeyException"><paramref name="key"/> is not the key the checkpoint is encrypted with.</exception>
    public static CheckpointReader Open(string directory, ImageLimits? limits = null, bool verifyPageFiles = true, bool trust = false, ImageKey? key = null,
        bool messagesCheckedOnRead = false)
    {
        ArgumentException.ThrowIfNullOrEmpty(directory);
        limits ??= ImageLimits.Default;
        string root = Path.TrimEndingDirectorySeparator(Path.GetFullPath(directory));
        if (!System.IO.Directory.Exists(root))
        {
            throw new ImageFormatException(File.Exists(root) ? $"{root} is not a directory" : $"{root} does not exist");
        }

        string manifestPath = Path.Join(root, ImageFormat.ManifestFileName);
        Manifest manifest;
        using (SafeFileHandle? handle = ImageFiles.OpenRegularOrNull(manifestPath, out long length))
        {
            if (handle is null)
            {
                throw new ImageFormatException($"no checkpoint at {root} (no {ImageFormat.ManifestFileName}; an interrupted checkpoint leaves only a *.tmp-* directory)");
            }
            manifest = MessageFile.Read(handle, length, manifestPath, ImageFileKind.Manifest, Manifest.Parser, limits);
        }

        bool signed = HostKey.Signed(manifest);
        if (!signed && !trust)
        {
            throw new ImageFormatException($"{root} was not written by this host (its manifest is not signed with {HostKey.Path}): a checkpoint from another machine, or forged; pass --trust if you know where it comes from");
        }
        Dictionary<string, ImageFileEntry> files = ValidateManifest(manifest, manifestPath, limits);
        if (key is not null && manifest.KeyId.Length > 0 && manifest.KeyId != key.Id)
        {
            throw new ImageKeyException($"checkpoint {root} is encrypted with key {manifest.KeyId}; --key names key {key}");
        }
        foreach (ImageFileEntry entry in manifest.Files)
        {
            VerifyFile(Path.Join(root, entry.Name), entry, limits, verifyPageFiles, verifyMessages: !messagesCheckedOnRead);
        }
        return new CheckpointReader(root, manifest, files, limits, manifest.KeyId.Length > 0 ? key : null)
        {
            Signed = signed, Trusted = trust, MessagesCheckedOnRead = messagesCheckedOnRead,
        };
    }

    /// <summary>Signed by this host's key.</summary>
    public bool Signed { get; private init; }

    /// <summary>Metadata files are checked against the manifest as they are read, not when opened.</summary>
    private bool MessagesCheckedOnRead { get; init; }

    /// <summary>Opened trusting it whether or not this host signed it (its sources are, too).</summary>
    private bool Trusted { get; init; }

    /// <summary>Reads a metadata file listed in the manifest, checking its kind and checksum.</summary>
    public T ReadMessage<T>(string fileName, ImageFileKind kind, MessageParser<T> parser)
        where T : IMessage<T>
    {
        ArgumentNullException.ThrowIfNull(parser);
        if (kind == ImageFileKind.Pages)
        {
            throw new ArgumentException("page files are read with OpenPageFile", nameof(kind));
        }
        ThrowIfNoKey();
        string path = GetFilePath(fileName);
        return MessageFile.Read(path, kind, parser, Limits, Key, MessagesCheckedOnRead ? _files[fileName].Xxh3 : null);
    }

    /// <summary>Refuses to read an encrypted checkpoint's contents without its key, with one line that says which.</summary>
    /// <exception cref="ImageKeyException">The checkpoint is encrypted and no key was given.</exception>
    public void ThrowIfNoKey()
    {
        if (Encrypted && Key is null)
        {
            throw new ImageKeyException($"checkpoint {Directory} is encrypted (key {Manifest.KeyId}): give --key KEYFILE");
        }
    }

    /// <summary>The full path of a file listed in the manifest.</summary>
    /// <exception cref="ImageFormatException">The manifest does not list <paramref name="fileName"/>.</exception>
    public string GetFilePath(string fileName)
    {
        ArgumentNullException.ThrowIfNull(fileName);
        if (!_files.ContainsKey(fileName))
        {
            throw ImageErrors.Format(Path.Join(Directory, ImageFormat.ManifestFileName), $"does not list {FileNames.Quote(fileName)}");
        }
        return Path.Join(Directory, fileName);
    }

    /// <summary>Opens a page file listed in the manifest, after checking its header.</summary>
    public PageFileReader OpenPageFile(string fileName)
    {
        ThrowIfNoKey();
        return PageFileReader.Open(GetFilePath(fileName), Limits, Key);
    }

    /// <summary>Opens page file <paramref name="fileName"/> (or a layer of it) of this checkpoint or of a <see cref="Source"/>.</summary>
    public PageFileReader OpenPageFile(string fileName, PageFileRef where)
    {
        var holder = Source(where.Source);
        holder.ThrowIfNoKey();
        return PageFileReader.Open(holder.GetFilePath(ImageFormat.LayerFileName(fileName, where.Layer)), Limits, holder.Key);
    }

    /// <summary>The full path of page file <paramref name="fileName"/> (or a layer of it) of this checkpoint or of a <see cref="Source"/>.</summary>
    /// <exception cref="ImageFormatException">No such source, or its manifest does not list that file.</exception>
    public string GetFilePath(string fileName, PageFileRef where) =>
        Source(where.Source).GetFilePath(ImageFormat.LayerFileName(fileName, where.Layer));

    /// <summary>What the manifest records of a file it lists: its size and checksum.</summary>
    /// <exception cref="ImageFormatException">The manifest does not list <paramref name="fileName"/>.</exception>
    public ImageFileEntry GetFileEntry(string fileName)
    {
        GetFilePath(fileName);
        return _files[fileName];
    }

    /// <summary>
    /// The checkpoint a page run's source refers to: 0 is this one; n is Manifest.sources[n - 1], a
    /// checkpoint directory beside this one (never a path elsewhere), itself validated on first use.
    /// </summary>
    /// <exception cref="ImageFormatException">No such source, an unsafe name, or that checkpoint is missing or damaged.</exception>
    public CheckpointReader Source(uint source)
    {
        if (source == 0)
        {
            return this;
        }
        if (source > (uint)Manifest.Sources.Count)
        {
            throw ImageErrors.Format(Path.Join(Directory, ImageFormat.ManifestFileName), $"has no source {source} (it lists {Manifest.Sources.Count})");
        }
        lock (_sources)
        {
            if (!_sources.TryGetValue(source, out CheckpointReader? reader))
            {
                string name = Manifest.Sources[(int)source - 1];
                string store = Path.GetDirectoryName(Directory) ?? throw new ImageFormatException($"{Directory} has no parent directory for its sources");
                string? problem = FileNames.FindProblem(name) ?? (name == Path.GetFileName(Directory) ? "is itself" : null);
                if (problem is not null)
                {
                    throw ImageErrors.Format(Path.Join(Directory, ImageFormat.ManifestFileName), $"names source checkpoint {FileNames.Quote(name)}, which {problem}");
                }
                try
                {
                    // Its metadata is checked as it is read, if this one's is (a restore reads only its page files).
                    reader = Open(Path.Join(store, name), Limits, verifyPageFiles: false, Trusted, Key, MessagesCheckedOnRead);
                }
                catch (ImageFormatException e)
                {
                    throw new ImageFormatException($"{Directory} is incremental and needs checkpoint {name} beside it: {e.Message}", e);
                }
                if (reader.Manifest.KeyId != Manifest.KeyId)
                {
                    throw new ImageFormatException($"{Directory} is incremental and needs checkpoint {name} beside it, which is {(reader.Encrypted ? $"encrypted with key {reader.Manifest.KeyId}" : "not encrypted")}, unlike it");
                }
                _sources[source] = reader;
            }
            return reader;
        }
    }

    private readonly Dictionary<uint, CheckpointReader> _sources = [];
}
