using System.Text;

namespace Amber.Image;

internal static class ImageFileKinds
{
    internal static ReadOnlySpan<byte> Tag(ImageFileKind kind) => kind switch
    {
        ImageFileKind.Manifest => "MNFT"u8,
        ImageFileKind.Process => "PROC"u8,
        ImageFileKind.Metadata => "META"u8,
        ImageFileKind.Pages => "PAGE"u8,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown image file kind"),
    };

    internal static ImageFileKind? FromTag(ReadOnlySpan<byte> tag)
    {
        foreach (ImageFileKind kind in Enum.GetValues<ImageFileKind>())
        {
            if (tag.SequenceEqual(Tag(kind)))
            {
                return kind;
            }
        }
        return null;
    }

    internal static string Describe(ImageFileKind kind) => kind switch
    {
        ImageFileKind.Manifest => "a manifest (MNFT)",
        ImageFileKind.Process => "a process image (PROC)",
        ImageFileKind.Metadata => "a metadata file (META)",
        _ => "a page file (PAGE)",
    };

    // A tag read from a foreign file may hold anything; keep messages printable and on one line.
    internal static string DescribeTag(ReadOnlySpan<byte> tag)
    {
        if (FromTag(tag) is { } kind)
        {
            return Describe(kind);
        }
        foreach (byte b in tag)
        {
            if (b is < 0x20 or > 0x7E)
            {
                return $"a file with unknown type tag {Convert.ToHexString(tag)}";
            }
        }
        return $"a file with unknown type tag '{Encoding.ASCII.GetString(tag)}'";
    }
}
