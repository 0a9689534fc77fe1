using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Amber.Image;

/// <summary>
/// A pinned, page-aligned buffer: what direct I/O needs, so page data can go from process memory to
/// the disk without passing through (and filling) the page cache.
/// </summary>
public sealed class PageBuffer
{
    private readonly byte[] _array;
    private readonly int _offset;

    /// <summary>A buffer of its own, of <paramref name="length"/> bytes (a multiple of <see cref="ImageFormat.PageSize"/>).</summary>
    public PageBuffer(int length)
    {
        if (length <= 0 || length % ImageFormat.PageSize != 0)
            throw new ArgumentOutOfRangeException(nameof(length), $"{length} is not a positive multiple of the page size");
        _array = GC.AllocateUninitializedArray<byte>(length + ImageFormat.PageSize, pinned: true);
        _offset = ImageFormat.PageSize - (int)(AddressOf(_array) % ImageFormat.PageSize);
        if (_offset == ImageFormat.PageSize)
            _offset = 0;
        Length = length;
    }

    /// <summary>A buffer carved out of a pinned block (<see cref="PageBufferPool"/>) at a page-aligned <paramref name="offset"/>.</summary>
    internal PageBuffer(byte[] pinned, int offset, int length)
    {
        _array = pinned;
        _offset = offset;
        Length = length;
    }

    /// <summary>The size in bytes: whole pages.</summary>
    public int Length { get; }

    /// <summary>The buffer's bytes, from a page boundary.</summary>
    public Span<byte> Span => _array.AsSpan(_offset, Length);

    /// <summary>Whether data starts on a page boundary (a condition of direct I/O).</summary>
    public static unsafe bool IsAligned(ReadOnlySpan<byte> data)
    {
        fixed (byte* p = data)
            return (nuint)p % ImageFormat.PageSize == 0;
    }

    internal static unsafe nuint AddressOf(byte[] pinned) =>
        (nuint)Unsafe.AsPointer(ref MemoryMarshal.GetArrayDataReference(pinned));
}
