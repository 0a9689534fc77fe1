using System.Buffers.Binary;
using System.IO.Hashing;

namespace Amber.Image;

// One page: common header, u64 data length, u64 XXH3-64 of bytes 0..23, zeros. The data follows
// at offset PageSize so every run stays page-aligned in the file.
internal static class PageFileHeader
{
    internal const int Length = ImageFormat.PageSize;
    private const int ChecksummedLength = 24;

    internal static void Write(Span<byte> header, ulong dataLength, uint flags = 0)
    {
        header[..Length].Clear();
        ImageHeader.Write(header, ImageFileKind.Pages, flags);
        BinaryPrimitives.WriteUInt64LittleEndian(header[16..], dataLength);
        BinaryPrimitives.WriteUInt64LittleEndian(header[ChecksummedLength..], XxHash3.HashToUInt64(header[..ChecksummedLength]));
    }

    /// <summary>
    /// The checksum the manifest records for a page file: XXH3-64 of the header page seeded with
    /// XXH3-64 of the data. It covers every byte, yet the writer can compute it from a running
    /// hash of the data, although the header (which holds the data length) is written last.
    /// </summary>
    internal static ulong FileChecksum(ReadOnlySpan<byte> header, ulong dataXxh3) =>
        XxHash3.HashToUInt64(header[..Length], unchecked((long)dataXxh3));

    internal static bool HasPageTag(ReadOnlySpan<byte> head) =>
        head.Length >= 8 && head.StartsWith(ImageFormat.Magic) && head.Slice(4, 4).SequenceEqual(ImageFileKinds.Tag(ImageFileKind.Pages));

    /// <summary>Validates the header page against the file; returns the data length.</summary>
    internal static ulong Validate(ReadOnlySpan<byte> head, long fileLength, ImageLimits limits, string path)
    {
        ImageHeader.Validate(head, fileLength, Length, ImageFileKind.Pages, path);
        ulong expected = BinaryPrimitives.ReadUInt64LittleEndian(head[ChecksummedLength..]);
        ulong actual = XxHash3.HashToUInt64(head[..ChecksummedLength]);
        if (actual != expected)
        {
            throw ImageErrors.Format(path, $"header checksum mismatch: XXH3 {actual:x16}, the header says {expected:x16}");
        }
        if (head[(ChecksummedLength + 8)..Length].ContainsAnyExcept((byte)0))
        {
            throw ImageErrors.Format(path, "header page has non-zero padding");
        }
        ulong dataLength = BinaryPrimitives.ReadUInt64LittleEndian(head[16..]);
        if (dataLength > (ulong)limits.MaxPageFileBytes)
        {
            throw ImageErrors.Format(path, $"data length {dataLength} exceeds the limit of {limits.MaxPageFileBytes} bytes (ImageLimits.MaxPageFileBytes)");
        }
        if (dataLength % ImageFormat.PageSize != 0)
        {
            throw ImageErrors.Format(path, $"data length {dataLength} is not a multiple of the page size {ImageFormat.PageSize}");
        }
        if (dataLength != (ulong)(fileLength - Length))
        {
            throw ImageErrors.Format(path, $"truncated or has trailing bytes: the header says {dataLength} data bytes, the file has {fileLength - Length}");
        }
        return dataLength;
    }
}
