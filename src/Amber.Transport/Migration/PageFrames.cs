using System.Buffers.Binary;

namespace Amber.Transport.Migration;

/// <summary>
/// The frames of a post-copy migration's page link (a second connection between the two agents,
/// opened by the source once the checkpoints have gone with their pages left out). The destination
/// asks for ranges of page files ("need", on first touch) and says when every file is in and checked
/// ("done"); the source sends page data ("data", asked for or pushed in its own order) and says when
/// it has sent everything ("sent"). Files are numbered in the order the image stream listed them.
/// </summary>
internal static class PageFrames
{
    public const byte Need = (byte)'N';
    public const byte Done = (byte)'D';
    public const byte Data = (byte)'P';
    public const byte Sent = (byte)'S';

    /// <summary>A frame's head: its kind, the file, the offset, the length.</summary>
    public const int HeadBytes = 1 + 2 + 8 + 4;

    /// <summary>Most data one frame carries: a fault waits for at most one of them ahead of its own.</summary>
    public const int MaxData = 256 << 10;

    public static void WriteHead(Span<byte> head, byte kind, int file, ulong offset, int length)
    {
        head[0] = kind;
        BinaryPrimitives.WriteUInt16LittleEndian(head[1..], checked((ushort)file));
        BinaryPrimitives.WriteUInt64LittleEndian(head[3..], offset);
        BinaryPrimitives.WriteInt32LittleEndian(head[11..], length);
    }

    public static (byte Kind, int File, ulong Offset, int Length) ReadHead(ReadOnlySpan<byte> head) =>
        (head[0], BinaryPrimitives.ReadUInt16LittleEndian(head[1..]), BinaryPrimitives.ReadUInt64LittleEndian(head[3..]), BinaryPrimitives.ReadInt32LittleEndian(head[11..]));
}
