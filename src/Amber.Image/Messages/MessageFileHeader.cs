using System.Buffers.Binary;

namespace Amber.Image;

// 32 bytes: common header, u64 payload length, u64 XXH3-64 of the payload.
internal static class MessageFileHeader
{
    internal const int Length = 32;

    internal static void Write(Span<byte> header, ImageFileKind kind, int payloadLength, ulong payloadXxh3, uint flags = 0)
    {
        ImageHeader.Write(header, kind, flags);
        BinaryPrimitives.WriteUInt64LittleEndian(header[16..], (ulong)payloadLength);
        BinaryPrimitives.WriteUInt64LittleEndian(header[24..], payloadXxh3);
    }

    /// <summary>Validates the header before anything is allocated; returns the payload length.</summary>
    internal static int Validate(ReadOnlySpan<byte> head, long fileLength, ImageFileKind kind, ImageLimits limits, string path, out ulong payloadXxh3)
    {
        ImageHeader.Validate(head, fileLength, Length, kind, path);
        ulong payloadLength = BinaryPrimitives.ReadUInt64LittleEndian(head[16..]);
        if (payloadLength > (ulong)limits.MaxMetadataBytes)
        {
            throw ImageErrors.Format(path, $"payload length {payloadLength} exceeds the limit of {limits.MaxMetadataBytes} bytes (ImageLimits.MaxMetadataBytes)");
        }
        if (payloadLength != (ulong)(fileLength - Length))
        {
            throw ImageErrors.Format(path, $"truncated or has trailing bytes: the header says {payloadLength} payload bytes, the file has {fileLength - Length}");
        }
        payloadXxh3 = BinaryPrimitives.ReadUInt64LittleEndian(head[24..]);
        return (int)payloadLength;
    }
}
