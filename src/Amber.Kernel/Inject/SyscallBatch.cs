using System.Buffers.Binary;
using System.Text;
using Amber.Native;

namespace Amber.Kernel.Inject;

/// <summary>
/// System calls queued to run inside a stopped process in one stop instead of a stop each: they are
/// written as a table into an area of its memory and made in order by the loop of
/// <see cref="Trampoline"/>. A call that fails, or returns other than it must (an mmap at another
/// address, a short read), stops the loop: its recovery, if it has one, deals with it and the calls
/// after it go on; otherwise the flush throws the <see cref="KernelCallException"/> naming the call.
/// Queued calls run at the latest at <see cref="Flush"/>, sooner when the area is full: whatever
/// reads the process's memory or state through another way flushes first.
/// </summary>
public sealed class SyscallBatch
{
    /// <summary>What a call may return when anything but an error will do.</summary>
    public const ulong AnyResult = ulong.MaxValue;

    /// <summary>
    /// Deals with a call that stopped the loop: <paramref name="error"/> when it failed (-errno),
    /// null when it returned <paramref name="result"/> but should not have. True: the batch goes on.
    /// </summary>
    public delegate bool Recovery(long result, KernelCallException? error);

    private readonly RemoteCalls _calls;
    private readonly ulong _area;
    private readonly int _size;
    private readonly byte[] _buffer;
    private readonly List<Entry> _entries = [];
    private int _strings; // strings fill the area from its end down

    /// <param name="calls">Calls through the trampoline whose loop runs the batch.</param>
    /// <param name="area">Memory of the process the table (and its strings) is written to.</param>
    public SyscallBatch(RemoteCalls calls, ulong area, int size)
    {
        if (size < 2 * Trampoline.EntrySize)
            throw new ArgumentOutOfRangeException(nameof(size), "the area of a batch holds at least two calls");
        _calls = calls;
        _area = area;
        _size = size;
        _buffer = new byte[size];
        _strings = size;
    }

    /// <summary>Calls queued and not yet made.</summary>
    public int Pending => _entries.Count;

    /// <summary>Queues a call: it must return <paramref name="expect"/> (or anything but an error).</summary>
    /// <param name="name">How an error names it, e.g. "mmap".</param>
    /// <param name="done">Told its result once it has run.</param>
    public void Add(string name, long number, ReadOnlySpan<ulong> args, ulong expect = AnyResult, Recovery? recover = null, Action<long>? done = null)
    {
        if ((_entries.Count + 1) * Trampoline.EntrySize > _strings)
            Flush();
        var entry = _buffer.AsSpan(_entries.Count * Trampoline.EntrySize, Trampoline.EntrySize);
        BinaryPrimitives.WriteInt64LittleEndian(entry, number);
        for (int i = 0; i < 6; i++)
            BinaryPrimitives.WriteUInt64LittleEndian(entry[(8 + 8 * i)..], i < args.Length ? args[i] : 0);
        BinaryPrimitives.WriteUInt64LittleEndian(entry[56..], expect);
        _entries.Add(new Entry(name, expect, recover, done));
    }

    /// <summary>Queues openat(AT_FDCWD, path): it must return <paramref name="expectFd"/> (-1: any fd).</summary>
    public void OpenAt(string path, int flags, int expectFd, Recovery? recover = null)
    {
        int length = Encoding.UTF8.GetByteCount(path) + 1;
        if (length > _size / 2)
            throw new ArgumentException($"path too long for a batch of injected calls: {path}");
        // The string and its call in the same run of the loop.
        if ((_entries.Count + 1) * Trampoline.EntrySize > _strings - length)
            Flush();
        _strings -= length;
        Encoding.UTF8.GetBytes(path, _buffer.AsSpan(_strings));
        _buffer[_strings + length - 1] = 0;
        Add($"openat({path})", SyscallNumbers.Openat, [unchecked((ulong)Interop.AT_FDCWD), _area + (ulong)_strings, (ulong)flags, 0],
            expectFd < 0 ? AnyResult : (ulong)expectFd, recover);
    }

    /// <summary>Queues mmap(2); one at a fixed address must land there.</summary>
    public void Mmap(ulong address, ulong length, int prot, int flags, int fd = -1, ulong offset = 0) =>
        Add("mmap", SyscallNumbers.Mmap, [address, length, (ulong)prot, (ulong)flags, (ulong)(long)fd, offset],
            (flags & (Interop.MAP_FIXED | Interop.MAP_FIXED_NOREPLACE)) != 0 ? address : AnyResult);

    public void Mprotect(ulong address, ulong length, int prot) =>
        Add("mprotect", SyscallNumbers.Mprotect, [address, length, (ulong)prot]);

    /// <summary>Queues madvise(2) with one of <see cref="Advice"/>.</summary>
    public void Madvise(ulong address, ulong length, int advice, Recovery? recover = null) =>
        Add($"madvise({Advice.Name(advice)})", SyscallNumbers.Madvise, [address, length, (ulong)advice], recover: recover);

    /// <summary>Queues the bulk fault-in of <see cref="RemoteCalls.PopulateWrite"/>.</summary>
    public void PopulateWrite(ulong address, ulong length) =>
        Add("madvise(MADV_POPULATE_WRITE)", SyscallNumbers.Madvise, [address, length, Interop.MADV_POPULATE_WRITE]);

    /// <summary>Queues pread64 into the process's memory; it must read all <paramref name="length"/> bytes, or recover.</summary>
    public void Pread(int fd, ulong address, ulong length, ulong offset, Recovery? recover = null, Action<long>? done = null) =>
        Add("pread64", SyscallNumbers.Pread64, [(ulong)fd, address, length, offset], length, recover, done);

    public void Mlock2(ulong address, ulong length, bool onFault, Recovery? recover = null) =>
        Add(onFault ? "mlock2(MLOCK_ONFAULT)" : "mlock2", SyscallNumbers.Mlock2, [address, length, onFault ? (ulong)Interop.MLOCK_ONFAULT : 0], recover: recover);

    public void Close(int fd) => Add("close", SyscallNumbers.Close, [(ulong)fd]);

    /// <summary>Queues lseek(fd, offset, SEEK_SET).</summary>
    public void Seek(int fd, long offset) => Add("lseek", SyscallNumbers.Lseek, [(ulong)fd, (ulong)offset, 0], (ulong)offset);

    public void SetCloseOnExec(int fd, bool value) =>
        Add("fcntl(F_SETFD)", SyscallNumbers.Fcntl, [(ulong)fd, Interop.F_SETFD, value ? (ulong)Interop.FD_CLOEXEC : 0]);

    /// <summary>Makes every queued call, in order, in one stop of the process (more if some needed recovering).</summary>
    public void Flush()
    {
        int count = _entries.Count;
        if (count == 0)
            return;
        try
        {
            int tableBytes = count * Trampoline.EntrySize;
            _calls.Memory.Write(_area, _buffer.AsSpan(0, tableBytes));
            if (_strings < _size)
                _calls.Memory.Write(_area + (ulong)_strings, _buffer.AsSpan(_strings, _size - _strings));
            bool told = _entries.Exists(e => e.Done != null);
            for (int first = 0; first < count;)
            {
                int left = _calls.Injector.RunBatch(_area + (ulong)(first * Trampoline.EntrySize), count - first);
                int stopped = count - left;
                int read = Math.Min(count, stopped + 1);
                if (told || left > 0)
                    _calls.Memory.Read(_area + (ulong)(first * Trampoline.EntrySize), _buffer.AsSpan(first * Trampoline.EntrySize, (read - first) * Trampoline.EntrySize));
                for (int i = first; i < stopped; i++)
                    _entries[i].Done?.Invoke(Result(i));
                if (left == 0)
                    break;
                Recover(stopped);
                first = stopped + 1;
            }
        }
        finally
        {
            _entries.Clear();
            _strings = _size;
        }
    }

    private long Result(int index) => BinaryPrimitives.ReadInt64LittleEndian(_buffer.AsSpan(index * Trampoline.EntrySize + 56));

    private void Recover(int index)
    {
        var entry = _entries[index];
        long result = Result(index);
        string target = _calls.Injector.Thread.Name;
        var error = result is < 0 and > -4096 ? new KernelCallException($"{entry.Name} (injected)", target, (int)-result) : null;
        if (entry.Recover?.Invoke(result, error) == true)
        {
            entry.Done?.Invoke(result);
            return;
        }
        throw error ?? new KernelCallException($"{entry.Name} (injected)", target, $"it returned {result}, not {(long)entry.Expect}");
    }

    private sealed record Entry(string Name, ulong Expect, Recovery? Recover, Action<long>? Done);
}
