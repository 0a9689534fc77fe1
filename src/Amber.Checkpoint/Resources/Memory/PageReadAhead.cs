using Amber.Image;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// Stretches of page files read ahead of their use, in the order planned, with direct I/O, on
/// threads of their own, into a few buffers used in turn: what a lazy restore's pager places while
/// the next stretches are read. Direct I/O because page files are written that way (nothing of them
/// is cached) and because reading them through the page cache fills as much fresh memory again as
/// the restored processes get — slow to touch on VMs (docs/kernel.md §13): a lazy restore of 2 GiB
/// took 2.6–3× a whole one that way.
/// <para>
/// Two readers take the stretches in turn, so that one reads while the other checks what it read
/// (<c>check</c>, its pages' checksums): the thread that places a stretch then only copies it.
/// They are handed over in the plan's order all the same. Both give way to the restored processes
/// (a lower priority): where the cores are short, the program runs first.
/// </para>
/// <para>
/// A stretch that cannot be read is handed over all the same, marked failed: whoever planned it reads
/// its pages another way, and says why if that fails too.
/// </para>
/// </summary>
internal sealed class PageReadAhead<T> : IDisposable
{
    /// <summary>The most one stretch (one read) holds.</summary>
    public const int SpanBytes = 4 << 20;
    private const int Buffers = 4;
    private const int Readers = 2;

    private readonly (PageFileReader File, ulong Offset, int Length, T Tag)[] _plan;
    private readonly Stretch?[] _read; // by the plan's index, until taken
    private readonly CancellationTokenSource _stop = new();
    private readonly Func<Stretch, bool> _check;
    private readonly Thread _thread;
    private readonly object _gate = new();
    private PageBufferPool? _buffers;
    private int _taken, _returned;

    /// <param name="plan">The stretches (each at most <see cref="SpanBytes"/>, page-aligned), with what the planner wants back with each.</param>
    /// <param name="check">Whether a stretch read holds what it should (its pages' checksums), on the reading thread: <see cref="Stretch.Checked"/>.</param>
    public PageReadAhead(IEnumerable<(PageFileReader File, ulong Offset, int Length, T Tag)> plan, Func<Stretch, bool> check)
    {
        _plan = [.. plan];
        _read = new Stretch?[_plan.Length];
        _check = check;
        _thread = new Thread(Start) { IsBackground = true, Name = "amber-page-read-ahead" };
        _thread.Start();
    }

    /// <summary>A stretch read: its data is <see cref="Data"/> (none if <see cref="Failed"/>) until it is given back (<see cref="Return"/>).</summary>
    public sealed record Stretch(PageFileReader File, ulong Offset, int Length, T Tag, PageBuffer? Buffer)
    {
        public bool Failed => Buffer is null;

        /// <summary>Read, and found to hold what it should: its pages need no checking again.</summary>
        public bool Checked { get; init; }

        public ReadOnlySpan<byte> Data => Buffer is null ? default : Buffer.Span[..Length];

        /// <summary>Whether [offset, offset + length) of <paramref name="file"/> is in the data.</summary>
        public bool Holds(PageFileReader file, ulong offset, ulong length) =>
            Buffer is not null && ReferenceEquals(file, File) && offset >= Offset && offset + length <= Offset + (ulong)Length;
    }

    /// <summary>Every stretch planned has been taken.</summary>
    public bool Finished => _taken == _plan.Length;

    /// <summary>The next stretch is there to take.</summary>
    public bool HasReady => _taken < _plan.Length && Volatile.Read(ref _read[_taken]) is not null;

    /// <summary>The next stretch in the plan's order, if it has been read (or has failed). Not thread-safe: one taker.</summary>
    public bool TryTake(out Stretch stretch)
    {
        stretch = null!;
        if (!HasReady)
            return false;
        stretch = _read[_taken]!;
        _read[_taken++] = null;
        return true;
    }

    /// <summary>Gives a stretch taken back, its buffer for the stretches still to read.</summary>
    public void Return(Stretch stretch)
    {
        lock (_gate)
        {
            if (stretch.Buffer is { } buffer && !_stop.IsCancellationRequested)
                _buffers?.Return(buffer);
            _returned++;
            Monitor.PulseAll(_gate);
        }
    }

    private void Start()
    {
        Kernel.Processes.BackgroundThread.GiveWay();
        try
        {
            // Made here, not on the pager's thread: faulting 16 MiB in takes a while.
            _buffers = new PageBufferPool(Math.Min(Buffers, _plan.Length), SpanBytes);
        }
        catch (OutOfMemoryException)
        {
            // Every stretch is then read another way.
        }
        var second = new Thread(() =>
        {
            Kernel.Processes.BackgroundThread.GiveWay();
            Read(1);
        }) { IsBackground = true, Name = "amber-page-read-ahead" };
        second.Start();
        Read(0);
        second.Join();
    }

    /// <summary>Reads the stretches <paramref name="first"/>, first + <see cref="Readers"/>, ...</summary>
    private void Read(int first)
    {
        for (int i = first; i < _plan.Length; i += Readers)
        {
            // A buffer for this one only once the ones before it have left one free: the two
            // readers' stretches are taken in turn, so neither may hold every buffer.
            lock (_gate)
            {
                while (i >= _returned + Buffers && !_stop.IsCancellationRequested)
                    Monitor.Wait(_gate);
            }
            if (_stop.IsCancellationRequested)
                return;
            var (file, offset, length, tag) = _plan[i];
            PageBuffer? buffer;
            try
            {
                buffer = _buffers?.Rent(_stop.Token);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            bool fine = false;
            try
            {
                if (buffer is not null)
                {
                    file.ReadDirect(offset, buffer.Span[..length]);
                    fine = _check(new Stretch(file, offset, length, tag, buffer));
                }
            }
            catch (Exception) when (buffer is not null)
            {
                // Whatever it is, the planner's own read of these pages meets it too, and says it.
                _buffers!.Return(buffer);
                buffer = null;
            }
            Volatile.Write(ref _read[i], new Stretch(file, offset, length, tag, buffer) { Checked = fine });
        }
    }

    /// <summary>Stops reading (waiting for the reads under way) and lets the buffers go.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            _stop.Cancel();
            Monitor.PulseAll(_gate);
        }
        _thread.Join();
        _buffers?.Dispose();
        _stop.Dispose();
    }
}
