using System.Buffers;
using System.IO.Hashing;
using Microsoft.Win32.SafeHandles;

namespace Amber.Image;

internal static class FileHashing
{
    // Large enough that syscalls are noise next to hashing, small enough to stay in L2/L3.
    private const int BufferSize = 1 << 20;

    /// <summary>XXH3-64 of <paramref name="length"/> bytes at <paramref name="offset"/>, streamed through one pooled buffer.</summary>
    internal static ulong Hash(SafeFileHandle handle, long offset, long length, string path)
    {
        var hasher = new XxHash3();
        byte[] buffer = ArrayPool<byte>.Shared.Rent((int)Math.Min(length, BufferSize));
        try
        {
            while (length > 0)
            {
                Span<byte> chunk = buffer.AsSpan(0, (int)Math.Min(length, buffer.Length));
                ImageFiles.ReadExactly(handle, chunk, offset, path);
                hasher.Append(chunk);
                offset += chunk.Length;
                length -= chunk.Length;
            }
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
        return hasher.GetCurrentHashAsUInt64();
    }
}
