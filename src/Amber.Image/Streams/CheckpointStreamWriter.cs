using System.Buffers;
using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

/// <summary>
/// The image store's stream form, written: committed checkpoints one after another through a pipe
/// or a socket, for a migration or <c>amber migrate --to-file</c>. A stream is the magic
/// <c>AMBRSTRM</c> and a version, then per checkpoint its name, its manifest file's bytes and every
/// file the manifest lists, in its order and exactly as stored (the same pages and messages a
/// checkpoint writes: nothing is decoded or re-encoded), and an end mark. Sizes come from the
/// manifest, so no file needs framing; <see cref="CheckpointStreamReader"/> checks every file against
/// the manifest's size and checksum before the checkpoint exists on its side.
/// <para>
/// A checkpoint may also go with its pages later (a post-copy migration): then each file is preceded
/// by a flag, and of a page file only its header page is in the stream; its data follows on another
/// channel, ranges at a time (<see cref="PagesLater"/> lists those files in the stream's order).
/// </para>
/// </summary>
public sealed class CheckpointStreamWriter
{
    internal static ReadOnlySpan<byte> Magic => "AMBRSTRM"u8;
    internal const uint Version = 1;
    internal const byte CheckpointMark = (byte)'C';
    internal const byte EndMark = (byte)'E';
    internal const byte PagesLaterMark = (byte)'L';
    internal const byte WholeFile = (byte)'F';
    internal const byte HeaderOnly = (byte)'H';
    private const int ChunkBytes = 1 << 20;

    private readonly Stream _output;

    private CheckpointStreamWriter(Stream output) => _output = output;

    /// <summary>Bytes written so far, the header included.</summary>
    public long BytesWritten { get; private set; }

    /// <summary>The page files whose data was left out (<c>Write(dir, pagesLater: true)</c>), in the stream's order: their full paths and sizes.</summary>
    public List<(string Path, long Size)> PagesLater { get; } = [];

    /// <summary>A stream begun on <paramref name="output"/> (its header written).</summary>
    public static CheckpointStreamWriter Begin(Stream output)
    {
        ArgumentNullException.ThrowIfNull(output);
        var writer = new CheckpointStreamWriter(output);
        Span<byte> header = stackalloc byte[12];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], Version);
        writer.Put(header);
        return writer;
    }

    /// <summary>
    /// Sends the checkpoint in <paramref name="directory"/> under its directory's name (or
    /// <paramref name="name"/>); returns the bytes it took. Its files are only read, never changed.
    /// </summary>
    /// <param name="directory">The checkpoint: committed, or sealed and not yet in place (<c>DIR.tmp-*</c>, sent as <paramref name="name"/>).</param>
    /// <param name="pagesLater">Send only the header page of each page file (<see cref="PagesLater"/>).</param>
    /// <param name="name">The name it has at the other end; by default its directory's.</param>
    /// <exception cref="ImageFormatException">It is not a committed checkpoint, or a file is not as its manifest says.</exception>
    /// <exception cref="IOException">The stream could not be written (the reader went away).</exception>
    public long Write(string directory, bool pagesLater = false, string? name = null)
    {
        long before = BytesWritten;
        // Opened (sizes checked) to know its files; their checksums are the reader's to check.
        var reader = CheckpointReader.Open(directory, verifyPageFiles: false, trust: true, messagesCheckedOnRead: true);
        string root = reader.Directory;
        byte[] sentName = Encoding.UTF8.GetBytes(name ?? Path.GetFileName(root));
        string manifestPath = Path.Join(root, ImageFormat.ManifestFileName);
        using var manifest = ImageFiles.OpenRegular(manifestPath, out long manifestLength);
        Span<byte> head = stackalloc byte[1 + 2 + 4];
        head[0] = pagesLater ? PagesLaterMark : CheckpointMark;
        BinaryPrimitives.WriteUInt16LittleEndian(head[1..], checked((ushort)sentName.Length));
        BinaryPrimitives.WriteUInt32LittleEndian(head[3..], checked((uint)manifestLength));
        Put(head);
        Put(sentName);
        Copy(manifest, manifestLength, manifestPath);
        Span<byte> pageHead = stackalloc byte[PageFileHeader.Length];
        foreach (var entry in reader.Manifest.Files)
        {
            string path = Path.Join(root, entry.Name);
            using var file = ImageFiles.OpenRegular(path, out long length);
            if ((ulong)length != entry.Size)
                throw ImageErrors.Format(path, $"is {length} bytes, the manifest says {entry.Size} (changed while it was sent?)");
            if (pagesLater)
            {
                bool later = length > PageFileHeader.Length;
                if (later)
                {
                    ImageFiles.ReadExactly(file, pageHead, 0, path);
                    later = PageFileHeader.HasPageTag(pageHead);
                }
                Put([later ? HeaderOnly : WholeFile]);
                if (later)
                {
                    Put(pageHead);
                    PagesLater.Add((path, length));
                    continue;
                }
            }
            Copy(file, length, path);
        }
        return BytesWritten - before;
    }

    /// <summary>The end of the stream: the reader knows nothing was cut off.</summary>
    public void End()
    {
        Put([EndMark]);
        _output.Flush();
    }

    private void Copy(SafeFileHandle file, long length, string path)
    {
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(Math.Max(length, 1), ChunkBytes));
        try
        {
            long offset = 0;
            while (offset < length)
            {
                var chunk = buffer.AsSpan(0, (int)Math.Min(length - offset, buffer.Length));
                ImageFiles.ReadExactly(file, chunk, offset, path);
                Put(chunk);
                offset += chunk.Length;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    private void Put(ReadOnlySpan<byte> bytes)
    {
        _output.Write(bytes);
        BytesWritten += bytes.Length;
    }
}
