using Amber.Image.Schema;
using K4os.Compression.LZ4;

namespace Amber.Image;

/// <summary>
/// Compression of page data (amber checkpoint --compress): zstd (level 1, the fast end: memory
/// compresses well there already) or LZ4. A block of up to <see cref="MaxPages"/> pages is
/// compressed as one; the page checksums stay those of the uncompressed pages.
/// </summary>
public static class PageCodec
{
    /// <summary>The most pages one compressed block holds.</summary>
    public const int MaxPages = 1024;

    [ThreadStatic] private static ZstdSharp.Compressor? _zstd;
    [ThreadStatic] private static ZstdSharp.Decompressor? _unzstd;

    /// <summary>Parses the command line's name of a codec: none, zstd, lz4.</summary>
    public static Codec Parse(string? name) => name?.ToLowerInvariant() switch
    {
        null or "" or "none" => Codec.None,
        "zstd" => Codec.Zstd,
        "lz4" => Codec.Lz4,
        _ => throw new ArgumentException($"unknown compression '{name}' (none, zstd, lz4)"),
    };

    /// <summary>The name <see cref="Parse"/> takes for <paramref name="codec"/>.</summary>
    public static string Name(Codec codec) => codec switch
    {
        Codec.Zstd => "zstd",
        Codec.Lz4 => "lz4",
        _ => "none",
    };

    /// <summary>Room a compressed block of <paramref name="length"/> bytes may need.</summary>
    public static int Bound(Codec codec, int length) => codec switch
    {
        Codec.Zstd => (int)ZstdSharp.Compressor.GetCompressBound(length),
        Codec.Lz4 => LZ4Codec.MaximumOutputSize(length),
        _ => length,
    };

    /// <summary>Compresses <paramref name="pages"/> into <paramref name="into"/>; returns the length.</summary>
    public static int Compress(Codec codec, ReadOnlySpan<byte> pages, Span<byte> into)
    {
        int n = codec switch
        {
            Codec.Zstd => (_zstd ??= new ZstdSharp.Compressor(1)).Wrap(pages, into),
            Codec.Lz4 => LZ4Codec.Encode(pages, into, LZ4Level.L00_FAST),
            _ => throw new ArgumentException($"codec {codec} does not compress", nameof(codec)),
        };
        if (n <= 0)
            throw new InvalidOperationException($"{Name(codec)} compression of {pages.Length} bytes failed");
        return n;
    }

    /// <summary>
    /// Decompresses a block into <paramref name="pages"/> (room for <see cref="MaxPages"/>); returns
    /// the bytes it held, or -1 if it is not a block of that codec (damaged).
    /// </summary>
    public static int Decompress(Codec codec, ReadOnlySpan<byte> block, Span<byte> pages)
    {
        try
        {
            int n = codec switch
            {
                Codec.Zstd => (_unzstd ??= new ZstdSharp.Decompressor()).Unwrap(block, pages),
                Codec.Lz4 => LZ4Codec.Decode(block, pages),
                _ => -1,
            };
            return n >= 0 ? n : -1;
        }
        catch (Exception e) when (e is ZstdSharp.ZstdException or ArgumentException or InvalidOperationException)
        {
            return -1;
        }
    }
}
