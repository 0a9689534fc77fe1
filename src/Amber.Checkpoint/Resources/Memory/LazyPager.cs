using System.Collections.Concurrent;
using System.Diagnostics;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Memory;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// The pages of a lazy restore (amber restore --lazy): the private memory of the restored processes
/// is mapped but left empty, and this serves it from the image while they run. A page touched first
/// is read, checked against its checksum and placed at once, with the pages after it (a fault);
/// meanwhile every other page is pushed, in file order, from stretches of the page files read ahead
/// and checked on threads of their own (<see cref="PageReadAhead{T}"/>), 2 MiB at a time copied by two
/// threads. This thread answers touches between two pushes, so a fault waits at most for one. The
/// processes' forks, mremaps, madvise drops and munmaps are followed (<see cref="MissingPages"/>), so
/// each page goes where the process now has it, or nowhere. A process's userfaultfd is closed once
/// all of its pages are placed (what is still missing then is memory that held nothing: it reads as
/// zero, as it did); when every one is, the pager is done. Pages found in no mapping are moved or
/// unmapped ones whose message is still to be read: they wait for it (<see cref="Space.Unmapped"/>).
/// <para>
/// Until then the processes depend on this pager: a page that fails its checksum, or the end of the
/// pager before its time, would leave them with memory that is not theirs. On a failure every
/// process is killed (<see cref="Failed"/>): a group's checkpoint is still there to restore from.
/// </para>
/// </summary>
public sealed class LazyPager : IDisposable
{
    private const int FaultChunk = 16 * ImageFormat.PageSize; // a touch usually goes on forward
    private const ulong ZeroChunk = 1 << 20; // of memory that reads as zero, served with a touch of it
    private const int PushChunk = 1 << 20;
    private const int IdlePollMs = 5;
    private const int ReadPollMs = 1; // waiting for a stretch read ahead, touches still answered
    private const ulong MaxReadGap = 256 << 10; // pages between two pieces read with them all the same
    private const ulong PushReadChunk = 2 << 20; // placed from a stretch read ahead between two looks at touches
    private const ulong CopyBytes = 256 << 10; // one copy of those, each thread every other one
    // How long pages found in no mapping wait for the message that says where they went. A copy that
    // raced with an mremap or munmap gets it microseconds later; only memory a forked child did not
    // get (MADV_DONTFORK) has none to come.
    private static readonly TimeSpan UnmappedPatience = TimeSpan.FromSeconds(5);

    private readonly ConcurrentQueue<HandedOver> _incoming = new();
    private readonly List<IDisposable> _owned = [];
    private readonly List<Space> _spaces = [];
    private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Stopwatch _clock = new();
    private readonly byte[] _buffer = new byte[PageCodec.MaxPages * ImageFormat.PageSize];
    private readonly byte[] _block = new byte[PageCodec.MaxPages * ImageFormat.PageSize];
    private PageRun? _blockRun;
    private Thread? _thread;
    private volatile bool _sealed, _stop, _released;
    private int _pushNext;
    // The stretches read ahead for the pushes, the one being placed, its piece and address there.
    private PageReadAhead<Piece[]>? _reads;
    private PageReadAhead<Piece[]>.Stretch? _held;
    private readonly List<Placing> _placing = [];
    private FillOutcome[] _outcomes = new FillOutcome[16];
    private HelperThread? _copier;
    private int _heldPiece;
    private ulong _heldAt;
    // Processes (and forked copies) handed to the pager, and how many there were at the last plan.
    private int _spacesAdded, _spacesPlanned;

    /// <summary>Called (on the pager's thread) when the restored memory cannot be completed: it should kill every restored process.</summary>
    public Action<string>? Failed { get; set; }

    /// <summary>Why the pager stopped before every page was placed; null while it runs or once it is done.</summary>
    public string? Failure { get; private set; }

    /// <summary>Done: every page placed (or the pager failed, <see cref="Failure"/>).</summary>
    public Task Completion => _done.Task;

    /// <summary>Pages placed because they were touched.</summary>
    public long FaultedPages { get; private set; }

    /// <summary>Touches served (each places up to 16 pages).</summary>
    public long Faults { get; private set; }

    /// <summary>Pages placed ahead of any touch.</summary>
    public long PushedPages { get; private set; }

    /// <summary>From the first process handed over to the last page placed.</summary>
    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Pages handed over, counted as the pager takes each process in (read once it is done).</summary>
    public long PagesHandedOver { get; private set; }

    /// <summary>
    /// Serves <paramref name="uffd"/>'s registered memory from now on: <paramref name="runs"/> (at
    /// their saved addresses) from the page files <paramref name="pagesOf"/> opens. Whatever of that
    /// memory no run covers reads as zero.
    /// </summary>
    /// <remarks>
    /// The pager's own thread makes its list of them (tens of thousands of runs for the end of a
    /// chain: ~30 ms of fresh memory), beside the rest of the restore rather than in its way.
    /// </remarks>
    public void Add(MissingPages uffd, IReadOnlyList<IList<PageRun>> runs, Func<PageFileRef, PageFileReader> pagesOf, string pageFile)
    {
        _incoming.Enqueue(new HandedOver(uffd, runs, pagesOf, pageFile));
        if (_thread is null)
        {
            _clock.Start();
            _thread = new Thread(Run) { IsBackground = true, Name = "amber-lazy-pages" };
            _thread.Start();
        }
    }

    /// <summary>
    /// Waits until every page is in, then closes the pager; the processes need the caller until then.
    /// </summary>
    /// <exception cref="CheckpointException">The memory could not be completed (the processes were killed).</exception>
    public void WaitUntilAllIn()
    {
        Completion.Wait();
        Dispose();
        if (Failure is { } failure)
            throw new CheckpointException($"{failure}; the restored processes were killed");
    }

    /// <summary>Something the pager reads from (page files) to close when it is done.</summary>
    public void Own(IDisposable files)
    {
        lock (_owned)
            _owned.Add(files);
    }

    /// <summary>
    /// The processes run: pages are pushed ahead from now on. Before, the pager only answers touches
    /// (the restore's own), and leaves the CPU to the restore, whose end is when they run.
    /// </summary>
    public void Released() => _released = true;

    /// <summary>No other process is coming: the pager ends once the ones it has are complete.</summary>
    public void Seal()
    {
        _sealed = true;
        if (_thread is null)
        {
            CloseOwned();
            _done.TrySetResult();
        }
    }

    private void Run()
    {
        try
        {
            Loop();
        }
        catch (Exception e)
        {
            // Whatever it is: the processes cannot be left with pages that will never come.
            Fail(e.Message);
        }
        finally
        {
            _clock.Stop();
            _reads?.Dispose(); // before the files it reads are closed
            _copier?.Dispose();
            foreach (var space in _spaces)
                space.Uffd.Dispose();
            _spaces.Clear();
            CloseOwned();
            _done.TrySetResult();
        }
    }

    private void CloseOwned()
    {
        lock (_owned)
        {
            _owned.ForEach(f => f.Dispose());
            _owned.Clear();
        }
    }

    private void Fail(string why)
    {
        Failure = $"the lazy restore's memory cannot be completed: {why}";
        try
        {
            Failed?.Invoke(Failure);
        }
        catch (Exception e)
        {
            Failure += $" (and ending the restored processes failed: {e.Message})";
        }
    }

    private void Loop()
    {
        Span<UserfaultEvent> events = stackalloc UserfaultEvent[64];
        var ready = new bool[16];
        while (!_stop)
        {
            while (_incoming.TryDequeue(out var added))
            {
                var pending = PendingOf(added.Runs, out long pages);
                PagesHandedOver += pages;
                _spaces.Add(new Space(added.Uffd, pending, added.PagesOf, added.PageFile));
                _spacesAdded++;
            }
            CloseComplete();
            if (_spaces.Count == 0 && _incoming.IsEmpty)
            {
                if (_sealed)
                    return;
                Thread.Sleep(1);
                continue;
            }
            foreach (var space in _spaces)
            {
                if (space.UnmappedFor > UnmappedPatience)
                    PlaceUnmapped(space);
            }
            bool pushing = _released && _spaces.Any(s => s.HasPushable);
            if (pushing && _reads is null && _spacesPlanned != _spacesAdded)
                PlanReads();
            bool waiting = pushing && _held is null && _reads is { Finished: false, HasReady: false };
            if (ready.Length < _spaces.Count)
                ready = new bool[_spaces.Count * 2];
            int polled = _spaces.Count; // a fork adds one as its message is handled
            if (MissingPages.Wait([.. _spaces.Select(s => s.Uffd)], ready, !pushing ? IdlePollMs : waiting ? ReadPollMs : 0))
            {
                for (int i = 0; i < polled; i++)
                {
                    if (!ready[i])
                        continue;
                    var space = _spaces[i];
                    for (int n; (n = space.Uffd.ReadEvents(events)) > 0;)
                    {
                        foreach (var e in events[..n])
                            Handle(space, e);
                    }
                }
            }
            foreach (var space in _spaces.ToList())
                RetryDeferred(space);
            if (pushing && !PushReadAhead())
                PushOne();
        }
    }

    private void Handle(Space space, UserfaultEvent e)
    {
        switch (e.Kind)
        {
            case UserfaultKind.PageFault:
                if (!Serve(space, e.Address))
                    space.Deferred.Add(e.Address);
                break;
            case UserfaultKind.Fork:
                // The child has what the parent had placed; what is missing in one is missing in both.
                _spaces.Add(new Space(MissingPages.Adopt(e.ForkFd, space.Uffd.Owner), [.. space.Pending], space.PagesOf, space.PageFile));
                _spacesAdded++;
                break;
            case UserfaultKind.Remap:
                space.Move(e.Address, e.Address + e.Length, e.To);
                space.Unmapped.Clear(); // whatever was found in no mapping may be placed where it is now
                break;
            case UserfaultKind.Remove or UserfaultKind.Unmap:
                space.Drop(e.Address, e.Address + e.Length);
                space.Unmapped.Clear();
                break;
        }
    }

    private void RetryDeferred(Space space)
    {
        if (space.Deferred.Count == 0)
            return;
        var waiting = space.Deferred.ToList();
        space.Deferred.Clear();
        foreach (ulong address in waiting)
        {
            if (!Serve(space, address))
                space.Deferred.Add(address);
        }
    }

    /// <summary>Places the touched page (and a few after it); false when the mm is changing (serve it again after its events).</summary>
    private bool Serve(Space space, ulong address)
    {
        int i = space.IndexOf(address);
        if (i < 0)
        {
            // Memory that holds nothing of the image (dropped, grown, never written): it reads as zero,
            // and so does what follows it up to the next pending page, served with it. A program
            // filling fresh memory would otherwise wait for the pager page after page.
            int next = space.FirstEndingAfter(address);
            ulong zeroEnd = Math.Min(address + ZeroChunk, next < space.Pending.Count ? space.Pending[next].Start : ulong.MaxValue);
            var zero = space.Uffd.Zero(address, zeroEnd - address);
            if (zero.Unmapped)
                space.Uffd.Wake(address, ImageFormat.PageSize); // moved or unmapped since: the thread finds out for itself
            return !zero.Again;
        }
        var p = space.Pending[i];
        ulong end = p.Run.IsBlock ? p.End : Math.Min(p.End, address + FaultChunk);
        ulong start = p.Run.IsBlock ? p.Start : address;
        var outcome = Place(space, p, start, end);
        if (outcome.Done > 0)
        {
            Faults++;
            FaultedPages += (long)(outcome.Done / ImageFormat.PageSize);
        }
        return !outcome.Again;
    }

    /// <summary>
    /// Plans the reads ahead of what is pending in page files, not compressed: file by file in offset
    /// order, pieces close to each other (forked copies of one process share theirs) in one read of up
    /// to a stretch. Files on this disk first; then those still arriving (a post-copy's), whose reads
    /// wait for their bytes on the readers' threads, not the pager's, which answers touches meanwhile.
    /// What is not planned, or has moved, is pushed by <see cref="PushOne"/> once the stretches are placed.
    /// </summary>
    private void PlanReads()
    {
        _spacesPlanned = _spacesAdded;
        var byFile = new Dictionary<PageFileReader, List<(ulong Offset, Piece Piece)>>();
        foreach (var space in _spaces)
        {
            foreach (var p in space.Pending)
            {
                var file = space.PagesOf(p.Run.StoredIn);
                if (p.Run.IsBlock)
                    continue;
                if (!byFile.TryGetValue(file, out var pieces))
                    byFile[file] = pieces = [];
                for (ulong start = p.Start; start < p.End; start += PageReadAhead<Piece[]>.SpanBytes)
                    pieces.Add((OffsetOf(p, start), new Piece(space, start, Math.Min(p.End, start + PageReadAhead<Piece[]>.SpanBytes), p)));
            }
        }
        var plan = new List<(PageFileReader, ulong, int, Piece[])>();
        foreach (var (file, pieces) in byFile.OrderBy(f => f.Key.IsWhole ? 0 : 1))
        {
            pieces.Sort((a, b) => a.Offset.CompareTo(b.Offset));
            for (int i = 0, j; i < pieces.Count; i = j)
            {
                ulong start = pieces[i].Offset, end = start + pieces[i].Piece.Length;
                for (j = i + 1; j < pieces.Count; j++)
                {
                    var (offset, piece) = pieces[j];
                    if (offset > end + MaxReadGap || offset + piece.Length - start > PageReadAhead<Piece[]>.SpanBytes)
                        break;
                    end = Math.Max(end, offset + piece.Length);
                }
                plan.Add((file, start, (int)(end - start), [.. pieces[i..j].Select(x => x.Piece)]));
            }
        }
        if (plan.Count > 0)
            _reads = new PageReadAhead<Piece[]>(plan, Checked);
    }

    /// <summary>Whether each piece of a stretch read ahead matches its checksums (on the reading thread: pieces and runs do not change).</summary>
    private static bool Checked(PageReadAhead<Piece[]>.Stretch stretch)
    {
        foreach (var piece in stretch.Tag)
        {
            var p = piece.Planned;
            var data = stretch.Data.Slice((int)(OffsetOf(p, piece.Start) - stretch.Offset), (int)piece.Length);
            if (FirstBadPage(p, piece.Start, data) >= 0)
                return false; // said by the pager's own check, which meets it too
        }
        return true;
    }

    /// <summary>
    /// Places up to 2 MiB of what the stretch read ahead holds of the pending memory; false when no
    /// read ahead is under way. Pages that are no longer where they were planned are left to <see cref="PushOne"/>.
    /// </summary>
    private bool PushReadAhead()
    {
        if (_reads is null)
            return false;
        if (_held is null)
        {
            if (!_reads.TryTake(out var next))
            {
                if (!_reads.Finished)
                    return true; // still being read
                _reads.Dispose();
                _reads = null;
                return false;
            }
            (_held, _heldPiece, _heldAt) = (next, 0, next.Tag[0].Start);
        }
        var stretch = _held;
        var placing = _placing;
        placing.Clear();
        for (ulong budget = PushReadChunk; budget > 0 && _heldPiece < stretch.Tag.Length;)
        {
            var (space, _, pieceEnd, planned) = stretch.Tag[_heldPiece];
            int i = space.FirstEndingAfter(_heldAt);
            if (stretch.Failed || i == space.Pending.Count || space.Pending[i].Start >= pieceEnd)
            {
                if (++_heldPiece < stretch.Tag.Length)
                    _heldAt = stretch.Tag[_heldPiece].Start;
                continue;
            }
            var p = space.Pending[i];
            ulong start = Math.Max(p.Start, _heldAt), end = Math.Min(Math.Min(p.End, pieceEnd), start + Math.Min(budget, CopyBytes));
            ulong offset = OffsetOf(p, start);
            _heldAt = Math.Min(p.End, pieceEnd); // unless placed below: not these pages (they moved here since)
            if (p.Run.IsBlock || !stretch.Holds(space.PagesOf(p.Run.StoredIn), offset, end - start) || space.IsUnmapped(start, end))
                continue;
            _heldAt = end;
            budget -= end - start;
            var at = new Placing(space, start, (int)(offset - stretch.Offset), (int)(end - start));
            // Checked already if it is still the run planned (a file's offset is one run's page).
            if (!stretch.Checked || !ReferenceEquals(p.Run, planned.Run))
                Check(space, p, start, stretch.Data.Slice(at.At, at.Length));
            placing.Add(at);
        }
        // Two threads copy (every other piece each): the page faults of fresh memory are paid on both cores.
        if (_outcomes.Length < placing.Count)
            _outcomes = new FillOutcome[placing.Count * 2];
        var outcomes = _outcomes;
        void CopyEvery(int first)
        {
            for (int k = first; k < placing.Count; k += 2)
                outcomes[k] = placing[k].Space.Uffd.Copy(placing[k].Start, stretch.Data.Slice(placing[k].At, placing[k].Length));
        }
        if (placing.Count > 1)
            (_copier ??= new HelperThread("amber-lazy-copier", givesWay: true)).Split(() => CopyEvery(1), () => CopyEvery(0));
        else
            CopyEvery(0);
        for (int k = 0; k < placing.Count; k++)
        {
            var (space, start, _, length) = placing[k];
            PushedPages += (long)(Settle(space, start, (ulong)length, outcomes[k]).Done / ImageFormat.PageSize);
        }
        if (_heldPiece == stretch.Tag.Length)
        {
            _reads.Return(stretch);
            _held = null;
        }
        return true;
    }

    /// <summary>Pushes the next MiB of some process's memory (each in turn), reading it here: what no stretch read ahead held.</summary>
    private void PushOne()
    {
        for (int tries = 0; tries < _spaces.Count; tries++)
        {
            var space = _spaces[_pushNext++ % _spaces.Count];
            if (space.NextPushable() is not var (p, start, end))
                continue;
            var outcome = Place(space, p, start, Math.Min(end, start + PushChunk));
            PushedPages += (long)(outcome.Done / ImageFormat.PageSize);
            return;
        }
    }

    /// <summary>
    /// Places what of <paramref name="space"/> was found in no mapping long ago, now that no message
    /// has come for it: where it is still in none, nothing can read it, and it is taken off the list.
    /// </summary>
    private void PlaceUnmapped(Space space)
    {
        var unmapped = space.Unmapped.ToList();
        space.Unmapped.Clear();
        foreach (var (from, to) in unmapped)
        {
            for (ulong at = from; at < to;)
            {
                int i = space.FirstEndingAfter(at);
                if (i == space.Pending.Count || space.Pending[i].Start >= to)
                    break;
                var p = space.Pending[i];
                ulong start = Math.Max(p.Start, at), end = Math.Min(Math.Min(p.End, to), start + PushChunk);
                var outcome = Place(space, p, start, end, skipUnmapped: true);
                PushedPages += (long)(outcome.Done / ImageFormat.PageSize);
                if (outcome.Again || outcome.Gone)
                    return; // pushed as any other once the mm has settled; or nothing left to place
                at = end;
            }
        }
    }

    /// <summary>Reads [start, end) of a pending stretch from the image, checks it, places it, and takes what was placed off the list.</summary>
    private FillOutcome Place(Space space, Pending p, ulong start, ulong end, bool skipUnmapped = false)
    {
        var data = _buffer.AsSpan(0, (int)(end - start));
        if (!p.Run.IsBlock)
        {
            space.PagesOf(p.Run.StoredIn).Read(OffsetOf(p, start), data);
            Check(space, p, start, data);
            return Copy(space, start, data, skipUnmapped);
        }
        if (!ReferenceEquals(_blockRun, p.Run))
        {
            space.PagesOf(p.Run.StoredIn).ReadRun(p.Run, _block.AsSpan(0, (int)p.Run.Count * ImageFormat.PageSize)); // checked
            _blockRun = p.Run;
        }
        _block.AsSpan((int)p.IntoRun(start), data.Length).CopyTo(data);
        return Copy(space, start, data, skipUnmapped);
    }

    /// <summary>Checks <paramref name="data"/>, the pages of [start, ...) of a pending stretch (not compressed), against their checksums.</summary>
    private static void Check(Space space, Pending p, ulong start, ReadOnlySpan<byte> data)
    {
        int bad = FirstBadPage(p, start, data);
        if (bad >= 0)
            throw new CheckpointException($"{space.PageFile}: the page saved for address {p.Run.Address + p.IntoRun(start) + (ulong)bad * ImageFormat.PageSize:x} does not match its checksum; the image is corrupt");
    }

    /// <summary>The first page of <paramref name="data"/> (the pages of <paramref name="p"/> from <paramref name="start"/> on) that fails its checksum; -1 if none.</summary>
    private static int FirstBadPage(Pending p, ulong start, ReadOnlySpan<byte> data) =>
        PageHashes.FirstMismatch(data, p.Run.PageXxh3, (int)(p.IntoRun(start) / ImageFormat.PageSize));

    /// <summary>Places <paramref name="data"/> at <paramref name="start"/> and takes what was placed off the list.</summary>
    private static FillOutcome Copy(Space space, ulong start, ReadOnlySpan<byte> data, bool skipUnmapped)
    {
        var outcome = space.Uffd.Copy(start, data, skipUnmapped);
        return Settle(space, start, (ulong)data.Length, outcome);
    }

    /// <summary>Takes what a copy of <paramref name="length"/> bytes at <paramref name="start"/> placed off the list.</summary>
    private static FillOutcome Settle(Space space, ulong start, ulong length, FillOutcome outcome)
    {
        ulong end = start + length;
        if (outcome.Gone)
        {
            // The process's memory is gone (it exited or exec'd): nothing of it can go anywhere.
            space.Drop(0, ulong.MaxValue);
            return outcome;
        }
        if (outcome.Done > 0)
            space.Drop(start, start + outcome.Done);
        if (outcome.Unmapped)
        {
            // Moved or unmapped, its message not read yet: the pages stay on the list, where that
            // message puts them. A thread that touched them is woken to find out for itself.
            space.MarkUnmapped(start + outcome.Done, end);
            space.Uffd.Wake(start + outcome.Done, end - start - outcome.Done);
        }
        return outcome;
    }

    /// <summary>Where the page data of <paramref name="address"/> (inside <paramref name="p"/>, not compressed) is in its page file.</summary>
    private static ulong OffsetOf(Pending p, ulong address) => p.Run.FileOffset + p.IntoRun(address);

    private void CloseComplete()
    {
        for (int i = _spaces.Count - 1; i >= 0; i--)
        {
            if (_spaces[i].Pending.Count > 0 || _spaces[i].Deferred.Count > 0)
                continue;
            _spaces[i].Uffd.Dispose(); // what is still missing held nothing: it reads as zero
            _spaces.RemoveAt(i);
        }
    }

    /// <summary>Stops serving (the restore failed, and its processes are gone): closes every userfaultfd.</summary>
    public void Dispose()
    {
        _stop = true;
        if (_thread is not null && _thread != Thread.CurrentThread)
            _thread.Join();
        while (_incoming.TryDequeue(out var left))
            left.Uffd.Dispose();
        if (_thread is null || _thread == Thread.CurrentThread)
        {
            CloseOwned();
            _done.TrySetResult();
        }
    }

    /// <summary>The runs of one process, in address order (as an image keeps them; sorted if not), and how many pages they hold.</summary>
    private static List<Pending> PendingOf(IReadOnlyList<IList<PageRun>> runs, out long pages)
    {
        pages = 0;
        int count = 0;
        foreach (var part in runs)
            count += part.Count;
        var pending = new List<Pending>(count);
        bool sorted = true;
        foreach (var part in runs)
        {
            foreach (var run in part)
            {
                sorted &= pending.Count == 0 || pending[^1].Start < run.Address;
                pending.Add(new Pending(run.Address, run.Address + run.Count * ImageFormat.PageSize, 0, run));
                pages += (long)run.Count;
            }
        }
        if (!sorted)
            pending.Sort((a, b) => a.Start.CompareTo(b.Start));
        return pending;
    }

    /// <summary>A process's memory handed over, not yet taken in by the pager's thread.</summary>
    private sealed record HandedOver(MissingPages Uffd, IReadOnlyList<IList<PageRun>> Runs, Func<PageFileRef, PageFileReader> PagesOf, string PageFile);

    /// <summary>Pages [Start, End) of a process's memory, as planned for a stretch read ahead (part of <paramref name="Planned"/>).</summary>
    private readonly record struct Piece(Space Space, ulong Start, ulong End, Pending Planned)
    {
        public ulong Length => End - Start;
    }

    /// <summary>Pages [Start, Start + Length) of a pending stretch placed from [At, At + Length) of a stretch read ahead.</summary>
    private readonly record struct Placing(Space Space, ulong Start, int At, int Length);

    /// <summary>Pages [Start, End) as the process has them now, saved at [Start - Shift, End - Shift) in Run.</summary>
    private readonly record struct Pending(ulong Start, ulong End, ulong Shift, PageRun Run)
    {
        /// <summary>How far into the run's pages <paramref name="address"/> (as the process has it now) was saved, in bytes.</summary>
        public ulong IntoRun(ulong address) => address - Shift - Run.Address;
    }

    /// <summary>One process's memory (or a forked copy of it): what is still to place, in address order.</summary>
    private sealed class Space(MissingPages uffd, List<Pending> pending, Func<PageFileRef, PageFileReader> pagesOf, string pageFile)
    {
        public MissingPages Uffd { get; } = uffd;
        public List<Pending> Pending { get; } = pending;
        public Func<PageFileRef, PageFileReader> PagesOf { get; } = pagesOf;
        public string PageFile { get; } = pageFile;

        /// <summary>Touched pages that could not be placed yet (the mm was changing).</summary>
        public List<ulong> Deferred { get; } = [];

        /// <summary>
        /// Pending ranges found in no mapping (moved or unmapped, the message not read yet): not pushed
        /// until a message changes this memory, or until <see cref="UnmappedFor"/> says none will.
        /// </summary>
        public List<(ulong Start, ulong End)> Unmapped { get; } = [];

        private long _unmappedSince;

        /// <summary>How long the oldest of <see cref="Unmapped"/> has waited (zero if none).</summary>
        public TimeSpan UnmappedFor => Unmapped.Count == 0 ? TimeSpan.Zero : Stopwatch.GetElapsedTime(_unmappedSince);

        /// <summary>Whether some of the pending memory is not waiting for a message.</summary>
        public bool HasPushable => Pending.Count > 0 && (Unmapped.Count == 0 || NextPushable() is not null);

        public void MarkUnmapped(ulong start, ulong end)
        {
            if (Unmapped.Count == 0)
                _unmappedSince = Stopwatch.GetTimestamp();
            Unmapped.Add((start, end));
        }

        public bool IsUnmapped(ulong start, ulong end) => Unmapped.Exists(u => u.Start < end && start < u.End);

        /// <summary>The first pending pages not waiting for a message: their stretch, from where to where.</summary>
        public (Pending P, ulong Start, ulong End)? NextPushable()
        {
            foreach (var p in Pending)
            {
                for (ulong at = p.Start; at < p.End;)
                {
                    var covering = Unmapped.Find(u => u.Start <= at && at < u.End);
                    if (covering.End == 0)
                    {
                        ulong next = Unmapped.Where(u => u.Start > at).Select(u => u.Start).DefaultIfEmpty(p.End).Min();
                        return (p, at, Math.Min(p.End, next));
                    }
                    at = covering.End;
                }
            }
            return null;
        }

        public int IndexOf(ulong address)
        {
            int lo = 0, hi = Pending.Count - 1;
            while (lo <= hi)
            {
                int mid = (lo + hi) / 2;
                if (address < Pending[mid].Start)
                    hi = mid - 1;
                else if (address >= Pending[mid].End)
                    lo = mid + 1;
                else
                    return mid;
            }
            return -1;
        }

        /// <summary>The first pending stretch that ends after <paramref name="address"/> (Count if none).</summary>
        public int FirstEndingAfter(ulong address)
        {
            int lo = 0, hi = Pending.Count;
            while (lo < hi)
            {
                int mid = (lo + hi) / 2;
                if (Pending[mid].End <= address)
                    lo = mid + 1;
                else
                    hi = mid;
            }
            return lo;
        }

        /// <summary>Takes [start, end) off the list (placed, dropped or unmapped).</summary>
        public void Drop(ulong start, ulong end) => Cut(start, end, moveTo: null);

        /// <summary>What was at [start, end) is at <paramref name="to"/> now.</summary>
        public void Move(ulong start, ulong end, ulong to)
        {
            var moved = Cut(start, end, moveTo: to);
            Pending.AddRange(moved);
            Pending.Sort((a, b) => a.Start.CompareTo(b.Start));
        }

        private List<Pending> Cut(ulong start, ulong end, ulong? moveTo)
        {
            var inside = new List<Pending>();
            int i = 0;
            while (i < Pending.Count && Pending[i].End <= start)
                i++;
            var kept = new List<Pending>();
            while (i < Pending.Count && Pending[i].Start < end)
            {
                var p = Pending[i];
                Pending.RemoveAt(i);
                if (p.Start < start)
                    kept.Add(p with { End = start });
                if (p.End > end)
                    kept.Add(p with { Start = end });
                ulong s = Math.Max(p.Start, start), e = Math.Min(p.End, end);
                if (moveTo is ulong to)
                    inside.Add(new Pending(s - start + to, e - start + to, p.Shift + to - start, p.Run));
            }
            Pending.InsertRange(i, kept);
            return inside;
        }
    }
}
