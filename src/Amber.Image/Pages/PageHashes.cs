using System.IO.Hashing;

namespace Amber.Image;

/// <summary>
/// Page data is checksummed page by page (XXH3-64 of each 4 KiB page): a run of pages can be split,
/// and a page compared with the same page in an earlier checkpoint, without reading anything twice.
/// </summary>
public static class PageHashes
{
    /// <summary>The XXH3-64 of each page of <paramref name="pages"/> (whole pages), in order.</summary>
    public static ulong[] Of(ReadOnlySpan<byte> pages)
    {
        if (pages.Length % ImageFormat.PageSize != 0)
            throw new ArgumentException($"length {pages.Length} is not a multiple of the page size {ImageFormat.PageSize}", nameof(pages));
        var hashes = new ulong[pages.Length / ImageFormat.PageSize];
        for (int i = 0; i < hashes.Length; i++)
            hashes[i] = XxHash3.HashToUInt64(pages.Slice(i * ImageFormat.PageSize, ImageFormat.PageSize));
        return hashes;
    }

    /// <summary>The index of the first page that does not match its hash, or -1.</summary>
    public static int FirstMismatch(ReadOnlySpan<byte> pages, IReadOnlyList<ulong> hashes) =>
        pages.Length != hashes.Count * ImageFormat.PageSize ? 0 : FirstMismatch(pages, hashes, 0);

    /// <summary>The index (in <paramref name="pages"/>) of the first page that does not match its hash, hashes[<paramref name="first"/>] on; or -1.</summary>
    public static int FirstMismatch(ReadOnlySpan<byte> pages, IReadOnlyList<ulong> hashes, int first)
    {
        int count = pages.Length / ImageFormat.PageSize;
        if (pages.Length % ImageFormat.PageSize != 0 || first < 0 || first + count > hashes.Count)
            return 0;
        for (int i = 0; i < count; i++)
        {
            if (XxHash3.HashToUInt64(pages.Slice(i * ImageFormat.PageSize, ImageFormat.PageSize)) != hashes[first + i])
                return i;
        }
        return -1;
    }
}
