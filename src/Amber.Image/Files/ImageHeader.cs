using System.Buffers.Binary;

namespace Amber.Image;

// The 16 bytes every image file starts with: "AMBR", a type tag, u32 format version, u32 flags.
internal static class ImageHeader
{
    /// <summary>
    /// Flag: the file's contents are encrypted (a metadata file's payload; a page file's blocks). A
    /// build that does not know it refuses the file ("unknown header flags").
    /// </summary>
    internal const uint Encrypted = 1;

    internal static void Write(Span<byte> header, ImageFileKind kind, uint flags = 0)
    {
        ImageFormat.Magic.CopyTo(header);
        ImageFileKinds.Tag(kind).CopyTo(header[4..]);
        BinaryPrimitives.WriteUInt32LittleEndian(header[8..], ImageFormat.FormatVersion);
        BinaryPrimitives.WriteUInt32LittleEndian(header[12..], flags);
    }

    /// <summary>The flags of a header <see cref="Validate"/> accepted.</summary>
    internal static uint Flags(ReadOnlySpan<byte> head) => BinaryPrimitives.ReadUInt32LittleEndian(head[12..]);

    /// <summary>
    /// Checks magic, tag, version and flags. <paramref name="head"/> holds the first
    /// min(<paramref name="fileLength"/>, <paramref name="headerLength"/>) bytes of the file.
    /// </summary>
    internal static void Validate(ReadOnlySpan<byte> head, long fileLength, int headerLength, ImageFileKind kind, string path)
    {
        if (fileLength == 0)
        {
            throw ImageErrors.Format(path, "is empty, not an Amber image file");
        }
        ReadOnlySpan<byte> magic = head[..Math.Min(head.Length, ImageFormat.Magic.Length)];
        if (!ImageFormat.Magic.StartsWith(magic))
        {
            throw ImageErrors.Format(path, $"not an Amber image file (starts with {Convert.ToHexString(magic)})");
        }
        // The tag before the length: a small file of another kind is "the wrong kind", not "truncated".
        if (head.Length >= 8 && !head.Slice(4, 4).SequenceEqual(ImageFileKinds.Tag(kind)))
        {
            throw ImageErrors.Format(path, $"is {ImageFileKinds.DescribeTag(head.Slice(4, 4))}, expected {ImageFileKinds.Describe(kind)}");
        }
        if (fileLength < headerLength)
        {
            throw ImageErrors.Format(path, $"truncated: {fileLength} bytes, shorter than the {headerLength}-byte header");
        }
        uint version = BinaryPrimitives.ReadUInt32LittleEndian(head[8..]);
        if (version != ImageFormat.FormatVersion)
        {
            throw ImageErrors.Format(path, $"format version {version} is not supported (this build reads version {ImageFormat.FormatVersion})");
        }
        uint flags = BinaryPrimitives.ReadUInt32LittleEndian(head[12..]);
        if ((flags & ~Encrypted) != 0 || (flags != 0 && kind == ImageFileKind.Manifest))
        {
            throw ImageErrors.Format(path, $"unknown header flags 0x{flags:x8} (this build knows 0x{Encrypted:x8}, encrypted, on files other than the manifest)");
        }
    }
}
