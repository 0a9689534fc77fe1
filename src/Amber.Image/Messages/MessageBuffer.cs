using System.Buffers;

namespace Amber.Image;

/// <summary>
/// The buffer metadata files are read into, made and faulted in ahead of time by a process that
/// knows it is about to read one while something waits: a restore worker started before the last
/// round of a migration. A process image is MiBs (a 1 GiB process's, 2–3.3 MB), and a buffer
/// fresh from the runtime costs a page fault every 4 KiB (slow on these VMs, docs/kernel.md §13):
/// 13–17 ms to read 3.3 MB, 5 ms into memory touched before. Without <see cref="Prepare"/>, or for a
/// file larger than it, or while it is in use, reads rent from the shared pool as before.
/// </summary>
public static class MessageBuffer
{
    private static byte[]? _made; // the prepared buffer
    private static byte[]? _free; // the same, while no read has it

    /// <summary>Makes the buffer, <paramref name="bytes"/> long, and touches every page of it now.</summary>
    public static void Prepare(int bytes)
    {
        var buffer = GC.AllocateUninitializedArray<byte>(bytes, pinned: true); // pinned: its advice stays with its pages
        PageBufferPool.AdviseHuge(buffer);
        buffer.AsSpan().Clear(); // every page touched, as PageBufferPool does its blocks
        _made = buffer;
        Volatile.Write(ref _free, buffer);
    }

    /// <summary>The prepared buffer if it is free and long enough, else one from the shared pool.</summary>
    internal static byte[] Rent(int length)
    {
        var prepared = Interlocked.Exchange(ref _free, null);
        if (prepared is not null && prepared.Length >= length)
            return prepared;
        if (prepared is not null)
            Volatile.Write(ref _free, prepared); // too short for this one: kept for the next
        return ArrayPool<byte>.Shared.Rent(length);
    }

    /// <summary>Gives back what <see cref="Rent"/> gave.</summary>
    internal static void Return(byte[] buffer)
    {
        if (ReferenceEquals(buffer, _made))
            Volatile.Write(ref _free, buffer);
        else
            ArrayPool<byte>.Shared.Return(buffer);
    }
}
