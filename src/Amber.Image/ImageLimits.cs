namespace Amber.Image;

/// <summary>
/// Bounds on what a reader allocates or accepts from an image, so that a corrupt or hostile image
/// fails with <see cref="ImageFormatException"/> instead of exhausting memory (clrmd DataTargetLimits).
/// </summary>
public sealed class ImageLimits
{
    /// <summary>The limits used when none are given.</summary>
    public static ImageLimits Default { get; } = new();

    /// <summary>Largest metadata payload (one protobuf message) read into memory. Default 256 MiB.</summary>
    public int MaxMetadataBytes
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value);
            ArgumentOutOfRangeException.ThrowIfGreaterThan(value, Array.MaxLength - 64);
            field = value;
        }
    } = 256 << 20;

    /// <summary>Most files a manifest may list. Default 100000.</summary>
    public int MaxFiles
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value);
            field = value;
        }
    } = 100_000;

    /// <summary>Largest amount of page data in one page file. Default 1 TiB.</summary>
    public long MaxPageFileBytes
    {
        get;
        init
        {
            ArgumentOutOfRangeException.ThrowIfNegativeOrZero(value);
            field = value;
        }
    } = 1L << 40;
}
