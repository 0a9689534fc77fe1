namespace Amber.Image;

/// <summary>Constants of the on-disk checkpoint format (DESIGN.md section 4).</summary>
public static class ImageFormat
{
    /// <summary>The format version this build writes and the only one it reads.</summary>
    public const uint FormatVersion = 2;

    /// <summary>Page files hold data in units of this size, aligned to it, after a header page of this size.</summary>
    public const int PageSize = 4096;

    /// <summary>The root of a checkpoint directory, written last.</summary>
    public const string ManifestFileName = "manifest.img";

    /// <summary>The first four bytes of every image file.</summary>
    internal static ReadOnlySpan<byte> Magic => "AMBR"u8;

    /// <summary>Manifest features this build understands (a reader refuses any other required one).</summary>
    internal static IReadOnlySet<string> SupportedFeatures { get; } = new HashSet<string>(StringComparer.Ordinal);
}
