using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Amber.Image.Schema;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

/// <summary>One checkpoint a stream brought: its name and where it now is.</summary>
/// <param name="Name">Its name (its directory's).</param>
/// <param name="Directory">Where it now is.</param>
/// <param name="Bytes">What it took of the stream.</param>
/// <param name="PagesToCome">Its page files whose data is still to arrive (sent with its pages later), in the stream's order.</param>
public sealed record ReceivedCheckpoint(string Name, string Directory, long Bytes, IReadOnlyList<IncomingPageFile> PagesToCome);

/// <summary>
/// A page file of a received checkpoint whose data comes later (a post-copy migration): it has its
/// header page and its full size, and holes where the data goes.
/// </summary>
/// <param name="Path">Where it is.</param>
/// <param name="Entry">What the manifest says of it: its size and checksum.</param>
public sealed record IncomingPageFile(string Path, ImageFileEntry Entry)
{
    /// <summary>Once all of its data is in: checks it against the manifest's checksum and makes it durable.</summary>
    /// <exception cref="ImageFormatException">It is not what the manifest says.</exception>
    public void Complete()
    {
        CheckpointReader.VerifyFile(Path, Entry, ImageLimits.Default, verifyPageFiles: true);
        using var file = ImageFiles.OpenRegular(Path, out _);
        ImageFiles.Fsync(file, Path);
    }
}

/// <summary>
/// The image store's stream form, read (see <see cref="CheckpointStreamWriter"/>): each checkpoint of
/// the stream becomes a directory of a store, committed as a checkpoint writer commits one — written
/// into <c>NAME.tmp-*</c>, every file checked against the manifest's size and checksum, made durable
/// (or left for <see cref="CheckpointStore.MakeDurable"/>), the manifest last, then renamed. A stream cut off, damaged or not a stream leaves nothing but
/// what it had already committed, and says what and where.
/// </summary>
public sealed class CheckpointStreamReader
{
    private const int ChunkBytes = 1 << 20;

    private readonly Stream _input;
    private readonly string _store;
    private readonly bool _sign;
    private readonly ImageLimits _limits;
    private readonly bool _durable;
    private bool _ended;

    private CheckpointStreamReader(Stream input, string store, bool sign, ImageLimits limits, bool durable)
    {
        _input = input;
        _store = store;
        _sign = sign;
        _limits = limits;
        _durable = durable;
    }

    /// <summary>Bytes read so far, the header included.</summary>
    public long BytesRead { get; private set; }

    /// <summary>
    /// Reads the stream's header from <paramref name="input"/>; its checkpoints will go into
    /// <paramref name="store"/> (which must exist).
    /// </summary>
    /// <param name="input">The stream, at its start.</param>
    /// <param name="store">The directory its checkpoints become directories of.</param>
    /// <param name="limits">Bounds on what a manifest may ask for; null: the defaults.</param>
    /// <param name="sign">
    /// Sign each manifest with this host's key (<see cref="HostKey"/>): for a stream from a peer
    /// already authenticated (a node of the cluster). Otherwise a checkpoint keeps the writer's
    /// signature, and one from another host needs trust to be restored.
    /// </param>
    /// <param name="durable">
    /// Each checkpoint made durable before it is committed (the default). False: committed from the
    /// page cache, for a reader that has it made durable (<see cref="CheckpointStore.MakeDurable"/>)
    /// before anything depends on it, and forgets it if it crashes before (a migration's destination,
    /// whose stream must not wait for the disk).
    /// </param>
    /// <exception cref="ImageFormatException">Not a checkpoint stream, or one of another version.</exception>
    public static CheckpointStreamReader Begin(Stream input, string store, bool sign, ImageLimits? limits = null, bool durable = true)
    {
        ArgumentNullException.ThrowIfNull(input);
        ArgumentException.ThrowIfNullOrEmpty(store);
        var reader = new CheckpointStreamReader(input, Path.GetFullPath(store), sign, limits ?? ImageLimits.Default, durable);
        Span<byte> header = stackalloc byte[12];
        reader.Take(header, "the stream's header");
        if (!header[..8].SequenceEqual(CheckpointStreamWriter.Magic))
            throw new ImageFormatException("not a checkpoint stream (it does not start with AMBRSTRM)");
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(header[8..]);
        if (version != CheckpointStreamWriter.Version)
            throw new ImageFormatException($"a checkpoint stream of version {version}; this build reads version {CheckpointStreamWriter.Version}");
        return reader;
    }

    /// <summary>The next checkpoint, committed into the store; null once the stream's end mark is read.</summary>
    /// <exception cref="ImageFormatException">The stream is damaged or cut off, or the checkpoint's name is not a safe one.</exception>
    /// <exception cref="ImageStoreException">The store already has a checkpoint of that name, or a write failed (a full disk).</exception>
    public ReceivedCheckpoint? Next()
    {
        if (_ended)
            return null;
        Span<byte> mark = stackalloc byte[1];
        Take(mark, "the next checkpoint's mark");
        if (mark[0] == CheckpointStreamWriter.EndMark)
        {
            _ended = true;
            return null;
        }
        bool pagesLater = mark[0] == CheckpointStreamWriter.PagesLaterMark;
        if (mark[0] != CheckpointStreamWriter.CheckpointMark && !pagesLater)
            throw new ImageFormatException($"the checkpoint stream is damaged: byte {BytesRead - 1} is 0x{mark[0]:x2}, not a checkpoint's mark");
        long start = BytesRead - 1;
        Span<byte> head = stackalloc byte[6];
        Take(head, "a checkpoint's header");
        int nameLength = BinaryPrimitives.ReadUInt16LittleEndian(head);
        uint manifestLength = BinaryPrimitives.ReadUInt32LittleEndian(head[2..]);
        var nameBytes = new byte[nameLength];
        Take(nameBytes, "a checkpoint's name");
        string name = Encoding.UTF8.GetString(nameBytes);
        if ((FileNames.FindProblem(name) ?? (CheckpointStore.IsBeingWritten(name) ? "is the name of one being written" : null)) is { } problem)
            throw new ImageFormatException($"the checkpoint stream names a checkpoint {FileNames.Quote(name)}, which {problem}");
        if (manifestLength > (ulong)MessageFileHeader.Length + (ulong)_limits.MaxMetadataBytes)
            throw new ImageFormatException($"the checkpoint stream's manifest of {name} is {manifestLength} bytes, more than a metadata file may hold");

        string target = Path.Join(_store, name);
        if (Directory.Exists(target) || File.Exists(target))
            throw new ImageStoreException($"cannot receive checkpoint {name}: {target} exists");
        using var writer = CheckpointWriter.Create(target);
        string temporary = writer.TemporaryDirectory;
        // The manifest is read from an unnamed file, and written under its name only once every file is in.
        Manifest manifest;
        using (var held = ImageFiles.CreateUnnamed(temporary))
        {
            Receive(held, manifestLength, $"the manifest of {name}");
            manifest = MessageFile.Read(held, manifestLength, Path.Join(target, ImageFormat.ManifestFileName), ImageFileKind.Manifest, Manifest.Parser, _limits);
        }
        var files = CheckpointReader.ValidateManifest(manifest, Path.Join(target, ImageFormat.ManifestFileName), _limits);
        var toCome = new List<IncomingPageFile>();
        Span<byte> flag = stackalloc byte[1];
        foreach (var entry in manifest.Files)
        {
            if (entry.Size > (ulong)_limits.MaxPageFileBytes + (ulong)PageFileHeader.Length)
                throw new ImageFormatException($"the manifest of {name} lists {entry.Name} of {entry.Size} bytes, more than a file of an image may hold");
            string path = Path.Join(temporary, entry.Name);
            using var file = ImageFiles.CreateNew(path);
            bool headerOnly = false;
            if (pagesLater)
            {
                Take(flag, $"the flag of {entry.Name} of {name}");
                headerOnly = flag[0] == CheckpointStreamWriter.HeaderOnly;
                if (!headerOnly && flag[0] != CheckpointStreamWriter.WholeFile)
                    throw new ImageFormatException($"the checkpoint stream is damaged: {entry.Name} of {name} is flagged 0x{flag[0]:x2}, neither whole nor header only");
                if (headerOnly && entry.Size <= PageFileHeader.Length)
                    throw new ImageFormatException($"the checkpoint stream sends only the header of {entry.Name} of {name}, which is {entry.Size} bytes: nothing to come");
            }
            Receive(file, headerOnly ? PageFileHeader.Length : (long)entry.Size, $"{entry.Name} of {name}");
            if (headerOnly)
            {
                // Its full size, with holes where the data will be written as it arrives.
                RandomAccess.SetLength(file, (long)entry.Size);
                toCome.Add(new IncomingPageFile(Path.Join(target, entry.Name), entry));
            }
            if (_durable)
                ImageFiles.Fsync(file, path);
        }
        if (_sign)
            HostKey.Sign(manifest);
        writer.CommitReceived(manifest, files.Count, toCome.Select(f => f.Entry.Name).ToHashSet(StringComparer.Ordinal), _durable);
        return new ReceivedCheckpoint(name, target, BytesRead - start, toCome);
    }

    /// <summary>
    /// Copies exactly <paramref name="length"/> bytes of the stream into a new file. A chunk is
    /// written on the thread pool while the next is read, so that the stream does not wait for the
    /// page cache: on a migration's destination, writing a last round of 7 MiB took 9-13 ms at times,
    /// as long as reading it off the link.
    /// </summary>
    private void Receive(SafeFileHandle file, long length, string what)
    {
        int size = (int)Math.Min(Math.Max(length, 1), ChunkBytes);
        byte[] reading = ArrayPool<byte>.Shared.Rent(size), writing = ArrayPool<byte>.Shared.Rent(size);
        Task? written = null; // the chunk before, being written from `writing`
        try
        {
            long offset = 0;
            while (offset < length)
            {
                int count = (int)Math.Min(length - offset, size);
                Take(reading.AsSpan(0, count), what);
                written?.GetAwaiter().GetResult();
                written = null;
                (reading, writing) = (writing, reading);
                byte[] chunk = writing;
                long at = offset;
                offset += count;
                if (offset == length)
                    Write(file, chunk.AsSpan(0, count), at, what); // the last: nothing left to read meanwhile
                else
                    written = Task.Run(() => Write(file, chunk.AsSpan(0, count), at, what));
            }
        }
        finally
        {
            // A write still under way (the stream failed meanwhile) ends before its buffer goes back.
            try
            {
                written?.Wait();
            }
            catch (AggregateException)
            {
                // The stream's failure is the one said.
            }
            ArrayPool<byte>.Shared.Return(reading);
            ArrayPool<byte>.Shared.Return(writing);
        }
    }

    private static void Write(SafeFileHandle file, ReadOnlySpan<byte> chunk, long at, string what)
    {
        try
        {
            RandomAccess.Write(file, chunk, at);
        }
        catch (IOException e)
        {
            throw ImageErrors.Io("write", what, e);
        }
    }

    private void Take(Span<byte> destination, string what)
    {
        int total = 0;
        while (total < destination.Length)
        {
            int read = _input.Read(destination[total..]);
            if (read == 0)
                throw new ImageFormatException($"the checkpoint stream ended in {what} (after {BytesRead + total} bytes): cut off");
            total += read;
        }
        BytesRead += total;
    }
}
