using System.Buffers;
using System.IO.Hashing;
using Google.Protobuf;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

// A metadata file: MessageFileHeader then one protobuf message. Encrypted (header flag
// ImageHeader.Encrypted), the payload is nonce, the message under AES-256-GCM, tag; the header's
// checksum covers those bytes, so damage is found without the key too.
internal static class MessageFile
{
    private const int SealedOverhead = BlockCipher.NonceLength + BlockCipher.TagLength;

    /// <summary>
    /// Writes the whole file with one pwrite; returns its size and whole-file XXH3-64 for the
    /// manifest. With a key, the message is encrypted; null: in clear.
    /// </summary>
    internal static (ulong Size, ulong Xxh3) Write(SafeFileHandle handle, string path, ImageFileKind kind, IMessage message, ImageKey? key = null)
    {
        int messageLength = message.CalculateSize();
        int payloadLength = key is null ? messageLength : checked(messageLength + SealedOverhead);
        int length = checked(MessageFileHeader.Length + payloadLength);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(key is null ? length : length + messageLength);
        try
        {
            Span<byte> file = buffer.AsSpan(0, length);
            Span<byte> payload = file[MessageFileHeader.Length..];
            if (key is null)
            {
                message.WriteTo(payload);
            }
            else
            {
                Span<byte> plain = buffer.AsSpan(length, messageLength);
                message.WriteTo(plain);
                BlockCipher.Seal(key, plain, payload.Slice(BlockCipher.NonceLength, messageLength), payload, payload[(BlockCipher.NonceLength + messageLength)..], ImageFileKinds.Tag(kind));
                plain.Clear();
            }
            MessageFileHeader.Write(file, kind, payloadLength, XxHash3.HashToUInt64(payload), key is null ? 0 : ImageHeader.Encrypted);
            try
            {
                RandomAccess.Write(handle, file, 0);
            }
            catch (IOException ex)
            {
                throw ImageErrors.Io("write", path, ex);
            }
            return ((ulong)length, XxHash3.HashToUInt64(file));
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// A metadata file of <paramref name="kind"/> read, its header and payload checksum checked, and
    /// parsed; with <paramref name="fileXxh3"/> (the whole file's checksum, as a manifest lists it)
    /// checked against that too, on the same bytes.
    /// </summary>
    internal static T Read<T>(string path, ImageFileKind kind, MessageParser<T> parser, ImageLimits limits, ImageKey? key = null, ulong? fileXxh3 = null)
        where T : IMessage<T>
    {
        using SafeFileHandle handle = ImageFiles.OpenRegular(path, out long length);
        return Read(handle, length, path, kind, parser, limits, key, fileXxh3);
    }

    internal static T Read<T>(SafeFileHandle handle, long length, string path, ImageFileKind kind, MessageParser<T> parser, ImageLimits limits, ImageKey? key = null,
        ulong? fileXxh3 = null)
        where T : IMessage<T>
    {
        Span<byte> head = stackalloc byte[MessageFileHeader.Length];
        head = head[..(int)Math.Min(length, head.Length)];
        ImageFiles.ReadExactly(handle, head, 0, path);
        int payloadLength = MessageFileHeader.Validate(head, length, kind, limits, path, out ulong expected);
        bool encrypted = (ImageHeader.Flags(head) & ImageHeader.Encrypted) != 0;
        if (encrypted && key is null)
        {
            throw ImageErrors.Format(path, "is encrypted, and no key was given to read it");
        }
        if (encrypted && payloadLength < SealedOverhead)
        {
            throw ImageErrors.Format(path, $"is encrypted but its payload ({payloadLength} bytes) is shorter than a nonce and a tag");
        }

        // The file whole (its header again, so that its checksum is one pass over one span), then the
        // clear text of an encrypted payload.
        int fileLength = MessageFileHeader.Length + payloadLength;
        byte[] buffer = MessageBuffer.Rent(encrypted ? fileLength + payloadLength : fileLength);
        try
        {
            Span<byte> file = buffer.AsSpan(0, fileLength);
            Span<byte> payload = file[MessageFileHeader.Length..];
            // A process image of GiBs holds MiBs of page checksums: fresh memory, a page fault per
            // 4 KiB (slow on VMs, docs/kernel.md §13), fewer in huge pages (a 4 MB image: 11 → 6 ms).
            PageBufferPool.AdviseHuge(file);
            head.CopyTo(file);
            ImageFiles.ReadExactly(handle, payload, MessageFileHeader.Length, path);
            if (fileXxh3 is { } listed && XxHash3.HashToUInt64(file) is var whole && whole != listed)
            {
                throw ImageErrors.ManifestChecksum(path, whole, listed);
            }
            ulong actual = XxHash3.HashToUInt64(payload);
            if (actual != expected)
            {
                throw ImageErrors.Format(path, $"payload checksum mismatch: XXH3 {actual:x16}, the header says {expected:x16}");
            }
            if (encrypted)
            {
                int messageLength = payloadLength - SealedOverhead;
                Span<byte> plain = buffer.AsSpan(fileLength, messageLength);
                if (!BlockCipher.TryOpen(key!, payload.Slice(BlockCipher.NonceLength, messageLength), plain, payload[..BlockCipher.NonceLength], payload[(BlockCipher.NonceLength + messageLength)..], ImageFileKinds.Tag(kind)))
                {
                    throw ImageErrors.Format(path, $"fails its authentication (AES-GCM tag): damaged, or not encrypted with key {key!.Id}");
                }
                payload = plain;
            }
            try
            {
                return parser.ParseFrom(payload);
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw new ImageFormatException(ImageErrors.OneLine($"{path}: payload is not a valid {typeof(T).Name}: {ex.Message}"), ex);
            }
            finally
            {
                if (encrypted)
                {
                    payload.Clear(); // no clear text left in a pooled buffer
                }
            }
        }
        finally
        {
            MessageBuffer.Return(buffer);
        }
    }
}
