using System.Buffers.Binary;
using System.IO.MemoryMappedFiles;
using System.Text;

namespace Amber.Coordinator.Table;

/// <summary>What a process of a group is doing, as the process table records it.</summary>
public enum ProcessState : byte
{
    Free = 0,
    Running = 1,
    Stopped = 2,
    Zombie = 3,
    Exited = 4,
}

/// <summary>One record of a group's process table.</summary>
public sealed record ProcessRecord(
    int Pid, int ParentPid, int Tree, ProcessState State, bool IsTreeRoot, long StartedUnixMs, long LastCheckpointUnixMs,
    int Restarts, int ExitStatus, int Threads, string Command)
{
    /// <summary>Its PID in its own PID namespace (a group's own, <c>--isolate pid</c>): the same as <see cref="Pid"/> outside one; 0 in a table written before it was kept.</summary>
    public int NsPid { get; init; }
}

/// <summary>The group-wide part of the table's header.</summary>
public sealed record TableHeader(string Group, int DaemonPid, int Restarts, long UpdatedUnixMs, long LastCheckpointUnixMs, string LastCheckpoint);

/// <summary>
/// A group's process table: one memory-mapped file (in /dev/shm), a versioned header and a
/// fixed-size record per process, written by the coordinator as processes start and exit and read by
/// anyone (amber ps) without asking it. A sequence number in the header, odd while the writer is
/// updating, lets a reader take a consistent copy (a seqlock).
/// Header (256 bytes, little-endian): magic "AMBRPTBL", version, header size, record size,
/// capacity, count, sequence (u64), updated (unix ms), group name (64), daemon pid, restarts,
/// last checkpoint time and id (64). Record (128 bytes): pid, parent, tree root, state, flags
/// (1: tree root), started, last checkpoint, restarts, exit status, threads, PID in its own PID
/// namespace (0 in tables from before it), command (16).
/// </summary>
public sealed class ProcessTable : IDisposable
{
    public const uint Version = 1;
    public const int HeaderSize = 256;
    public const int RecordSize = 128;
    public const int Capacity = 16384;
    private const int NameSize = 64;
    private const int CommandSize = 16;
    private static ReadOnlySpan<byte> Magic => "AMBRPTBL"u8;

    private readonly MemoryMappedFile _file;
    private readonly MemoryMappedViewAccessor _view;

    private ProcessTable(MemoryMappedFile file, MemoryMappedViewAccessor view)
    {
        _file = file;
        _view = view;
    }

    public static long FileSize => HeaderSize + (long)RecordSize * Capacity;

    /// <summary>
    /// Opens the table for writing, making it if needed, readable by group <paramref name="readers"/>
    /// (mode 0640; see StateFiles). In /dev/shm anyone may have put a file or a link of that name
    /// first: only a file of ours is kept, anything else is replaced, never followed.
    /// </summary>
    public static ProcessTable OpenForWriting(string path, string group, uint readers)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        Security.StateFiles.Give(path, Security.StateFiles.Self, readers, Security.StateFiles.OwnerAndGroupRead);
        bool fresh = new FileInfo(path).Length != FileSize;
        if (fresh)
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.ReadWrite);
            stream.SetLength(FileSize);
        }
        var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, FileSize, MemoryMappedFileAccess.ReadWrite);
        var table = new ProcessTable(file, file.CreateViewAccessor(0, FileSize, MemoryMappedFileAccess.ReadWrite));
        if (fresh || !table.HasValidHeader())
            table.Initialize(group);
        return table;
    }

    /// <summary>Opens an existing table to read; null if there is none.</summary>
    public static ProcessTable? OpenForReading(string path)
    {
        if (!File.Exists(path))
            return null;
        if (new FileInfo(path).Length < HeaderSize)
            throw new IOException($"{path} is not a process table (too short)");
        var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        var table = new ProcessTable(file, file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read));
        if (!table.HasValidHeader())
        {
            table.Dispose();
            throw new IOException($"{path} is not a process table of this version");
        }
        return table;
    }

    /// <summary>Replaces the whole table with <paramref name="records"/> and the header's group facts, as one update.</summary>
    public void Write(IReadOnlyList<ProcessRecord> records, TableHeader header)
    {
        if (records.Count > Capacity)
            throw new IOException($"group {header.Group} has {records.Count} processes, more than the table's {Capacity}");
        ulong sequence = _view.ReadUInt64(32);
        _view.Write(32, sequence | 1); // odd: being written
        Thread.MemoryBarrier();
        var buffer = new byte[RecordSize];
        for (int i = 0; i < records.Count; i++)
        {
            Encode(records[i], buffer);
            _view.WriteArray(HeaderSize + (long)i * RecordSize, buffer, 0, RecordSize);
        }
        Array.Clear(buffer);
        int previous = _view.ReadInt32(24);
        for (int i = records.Count; i < previous; i++)
            _view.WriteArray(HeaderSize + (long)i * RecordSize, buffer, 0, RecordSize);
        _view.Write(24, records.Count);
        _view.Write(40, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
        WriteString(48, header.Group, NameSize);
        _view.Write(112, header.DaemonPid);
        _view.Write(116, header.Restarts);
        _view.Write(120, header.LastCheckpointUnixMs);
        WriteString(128, header.LastCheckpoint, NameSize);
        Thread.MemoryBarrier();
        _view.Write(32, (sequence | 1) + 1); // even again: consistent
        _view.Flush();
    }

    /// <summary>A consistent copy of the table (retrying while the writer is in the middle of an update).</summary>
    public (TableHeader Header, List<ProcessRecord> Records) Read()
    {
        for (int attempt = 0; ; attempt++)
        {
            ulong before = _view.ReadUInt64(32);
            if ((before & 1) == 0)
            {
                int count = Math.Clamp(_view.ReadInt32(24), 0, Capacity);
                var header = new TableHeader(ReadString(48, NameSize), _view.ReadInt32(112), _view.ReadInt32(116), _view.ReadInt64(40),
                    _view.ReadInt64(120), ReadString(128, NameSize));
                var records = new List<ProcessRecord>(count);
                var buffer = new byte[RecordSize];
                for (int i = 0; i < count; i++)
                {
                    _view.ReadArray(HeaderSize + (long)i * RecordSize, buffer, 0, RecordSize);
                    records.Add(Decode(buffer));
                }
                Thread.MemoryBarrier();
                if (_view.ReadUInt64(32) == before)
                    return (header, records);
            }
            if (attempt > 1000)
                throw new IOException("the process table kept changing while being read");
            Thread.Sleep(1);
        }
    }

    public void Dispose()
    {
        _view.Dispose();
        _file.Dispose();
    }

    private bool HasValidHeader()
    {
        var magic = new byte[8];
        _view.ReadArray(0, magic, 0, 8);
        return magic.AsSpan().SequenceEqual(Magic) && _view.ReadUInt32(8) == Version && _view.ReadUInt32(12) == HeaderSize
            && _view.ReadUInt32(16) == RecordSize && _view.ReadUInt32(20) == Capacity;
    }

    private void Initialize(string group)
    {
        var header = new byte[HeaderSize];
        Magic.CopyTo(header);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(8), Version);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(12), HeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(16), RecordSize);
        BinaryPrimitives.WriteUInt32LittleEndian(header.AsSpan(20), Capacity);
        _view.WriteArray(0, header, 0, HeaderSize);
        WriteString(48, group, NameSize);
    }

    private static void Encode(ProcessRecord r, Span<byte> b)
    {
        b.Clear();
        BinaryPrimitives.WriteInt32LittleEndian(b, r.Pid);
        BinaryPrimitives.WriteInt32LittleEndian(b[4..], r.ParentPid);
        BinaryPrimitives.WriteInt32LittleEndian(b[8..], r.Tree);
        b[12] = (byte)r.State;
        b[13] = r.IsTreeRoot ? (byte)1 : (byte)0;
        BinaryPrimitives.WriteInt64LittleEndian(b[16..], r.StartedUnixMs);
        BinaryPrimitives.WriteInt64LittleEndian(b[24..], r.LastCheckpointUnixMs);
        BinaryPrimitives.WriteInt32LittleEndian(b[32..], r.Restarts);
        BinaryPrimitives.WriteInt32LittleEndian(b[36..], r.ExitStatus);
        BinaryPrimitives.WriteInt32LittleEndian(b[40..], r.Threads);
        BinaryPrimitives.WriteInt32LittleEndian(b[44..], r.NsPid);
        var command = Encoding.UTF8.GetBytes(r.Command);
        command.AsSpan(0, Math.Min(command.Length, CommandSize)).CopyTo(b[48..]);
    }

    private static ProcessRecord Decode(ReadOnlySpan<byte> b)
    {
        var command = b.Slice(48, CommandSize);
        int nul = command.IndexOf((byte)0);
        return new ProcessRecord(
            BinaryPrimitives.ReadInt32LittleEndian(b), BinaryPrimitives.ReadInt32LittleEndian(b[4..]), BinaryPrimitives.ReadInt32LittleEndian(b[8..]),
            (ProcessState)b[12], (b[13] & 1) != 0, BinaryPrimitives.ReadInt64LittleEndian(b[16..]), BinaryPrimitives.ReadInt64LittleEndian(b[24..]),
            BinaryPrimitives.ReadInt32LittleEndian(b[32..]), BinaryPrimitives.ReadInt32LittleEndian(b[36..]), BinaryPrimitives.ReadInt32LittleEndian(b[40..]),
            Encoding.UTF8.GetString(nul < 0 ? command : command[..nul])) { NsPid = BinaryPrimitives.ReadInt32LittleEndian(b[44..]) };
    }

    private void WriteString(long at, string value, int size)
    {
        var bytes = new byte[size];
        var encoded = Encoding.UTF8.GetBytes(value);
        encoded.AsSpan(0, Math.Min(encoded.Length, size - 1)).CopyTo(bytes);
        _view.WriteArray(at, bytes, 0, size);
    }

    private string ReadString(long at, int size)
    {
        var bytes = new byte[size];
        _view.ReadArray(at, bytes, 0, size);
        int nul = Array.IndexOf(bytes, (byte)0);
        return Encoding.UTF8.GetString(bytes, 0, nul < 0 ? size : nul);
    }
}
