using System.Buffers;
using System.IO.Hashing;
using Google.Protobuf;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

// A metadata file: MessageFileHeader then one protobuf message.
internal static class MessageFile
{
    /// <summary>Writes the whole file with one pwrite; returns its size and whole-file XXH3-64 for the manifest.</summary>
    internal static (ulong Size, ulong Xxh3) Write(SafeFileHandle handle, string path, ImageFileKind kind, IMessage message)
    {
        int payloadLength = message.CalculateSize();
        int length = checked(MessageFileHeader.Length + payloadLength);
        byte[] buffer = ArrayPool<byte>.Shared.Rent(length);
        try
        {
            Span<byte> file = buffer.AsSpan(0, length);
            Span<byte> payload = file[MessageFileHeader.Length..];
            message.WriteTo(payload);
            MessageFileHeader.Write(file, kind, payloadLength, XxHash3.HashToUInt64(payload));
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

    internal static T Read<T>(string path, ImageFileKind kind, MessageParser<T> parser, ImageLimits limits)
        where T : IMessage<T>
    {
        using SafeFileHandle handle = ImageFiles.OpenRegular(path, out long length);
        return Read(handle, length, path, kind, parser, limits);
    }

    internal static T Read<T>(SafeFileHandle handle, long length, string path, ImageFileKind kind, MessageParser<T> parser, ImageLimits limits)
        where T : IMessage<T>
    {
        Span<byte> head = stackalloc byte[MessageFileHeader.Length];
        head = head[..(int)Math.Min(length, head.Length)];
        ImageFiles.ReadExactly(handle, head, 0, path);
        int payloadLength = MessageFileHeader.Validate(head, length, kind, limits, path, out ulong expected);

        byte[] buffer = ArrayPool<byte>.Shared.Rent(payloadLength);
        try
        {
            Span<byte> payload = buffer.AsSpan(0, payloadLength);
            ImageFiles.ReadExactly(handle, payload, MessageFileHeader.Length, path);
            ulong actual = XxHash3.HashToUInt64(payload);
            if (actual != expected)
            {
                throw ImageErrors.Format(path, $"payload checksum mismatch: XXH3 {actual:x16}, the header says {expected:x16}");
            }
            try
            {
                return parser.ParseFrom(payload);
            }
            catch (InvalidProtocolBufferException ex)
            {
                throw new ImageFormatException(ImageErrors.OneLine($"{path}: payload is not a valid {typeof(T).Name}: {ex.Message}"), ex);
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }
}
