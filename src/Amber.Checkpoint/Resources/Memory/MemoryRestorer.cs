using Amber.Checkpoint.Restore;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Memory;

/// <summary>
/// Rebuilds the address space inside the new process: the husk's own mappings go, [vvar],
/// [vvar_vclock] and [vdso] move together to their saved addresses (glibc holds pointers into the
/// vdso; the vdso reads vvar relative to itself), then every saved mapping is created at its address
/// and its pages are read by the process itself from the page file (pread64 straight into place),
/// after populating the range in bulk. An incremental chain's end, or a merge that kept its base in
/// place, leaves memory in many short pieces: where one page file holds a stretch whole under a few
/// newer pages, the process reads the stretch whole and the newer pages are written over it; other
/// short pieces are read here, a page file at a time in large reads (several files at once), and
/// written into the process in bulk (process_vm_writev); compressed pages are read and
/// decompressed here and written through /proc/PID/mem. The process's own calls go in batches
/// (<see cref="SyscallBatch"/>): a .NET runtime has ~1 000 mappings, and a stop of the process for
/// each of their ~2 500 calls cost 230 ms.
/// </summary>
public sealed partial class MemoryRestorer(
    RemoteCalls calls, SyscallBatch batch, ProcessImage image, ulong trampoline, IReadOnlyDictionary<ulong, int> memfds, Func<ulong, string> deletedPath,
    List<string> warnings)
{
    private const ulong PageSize = ImageFormat.PageSize;
    private readonly Dictionary<(int Pid, PageFileRef Where), int> _pageFds = [];
    private Func<int, PageFileRef, string>? _pageFilePath;
    private Func<int, PageFileRef, PageFileReader>? _pagesOf;
    private byte[]? _decompressed;
    private bool _directIo;
    private int _spareFd;
    private string _pageFile = "";

    // The runs the process reads into place itself: checked in place afterwards (PageVerifier). The
    // others are checked on their way in.
    private readonly List<PageRun> _readInPlace = [];

    /// <summary>
    /// A lazy restore's pager: the private memory it can serve is mapped empty and handed to it
    /// (<see cref="LazyPager"/>), with its own <see cref="LazyPageFiles"/>; null: every page is placed now.
    /// </summary>
    public LazyPager? Pager { get; init; }

    /// <summary>This process's page files, opened for the pager (which outlives the restore of this process).</summary>
    public PageFiles? LazyPageFiles { get; init; }

    // A mapping holding less than this is placed at once: it is touched at once anyway (a stack, a
    // small heap), and a fault costs more than a read.
    private const ulong LazyAtLeast = 256 << 10;

    // A read the process makes itself costs an injected system call, and a direct read of a few
    // pages a trip to the disk: ~0.3 ms a piece here, a minute for the ~200 000 pieces of a 2 GiB
    // process after ten checkpoints of 1 % of its pages. Shorter pieces are read by amber instead.
    private const ulong ReadItselfAtLeast = 1 << 20;
    private const int ScatterBytes = 4 << 20;
    private const ulong PopulateAtLeast = 64 << 10;

    public void RemoveHuskMappings()
    {
        var inherited = image.Mm.Vmas.Where(v => v.Inherited).Select(v => (v.Start, v.End)).ToHashSet();
        foreach (var m in ProcFs.ReadMaps(calls.Memory.Pid))
        {
            if (m.Start == trampoline || m.Path is "[vdso]" or "[vvar]" or "[vvar_vclock]" or "[vsyscall]" || inherited.Contains((m.Start, m.End)))
                continue;
            calls.Munmap(m.Start, m.Length);
        }
    }

    /// <summary>
    /// The mm's fields (code, data, brk, stack, arguments, environment, auxv) and its exe, in one
    /// PR_SET_MM_MAP. A child forked without exec already has its exe; the kernel refuses (EBUSY) to
    /// replace an exe that is still mapped, even by itself, so it is only set when it differs (-1: keep).
    /// </summary>
    public void SetLayout()
    {
        bool sameExe = ProcFs.ReadExe(calls.Memory.Pid) == image.ExePath;
        int exe = sameExe ? -1 : calls.OpenAt(image.ExePath, OpenFlags.ReadOnly | OpenFlags.CloseOnExec);
        var m = image.Mm;
        calls.SetMmMap(new MmLayout(m.StartCode, m.EndCode, m.StartData, m.EndData, m.StartBrk, m.Brk, m.StartStack,
            m.ArgStart, m.ArgEnd, m.EnvStart, m.EnvEnd), m.Auxv.Span, exe);
        if (!sameExe)
            calls.Close(exe);
    }

    public void MoveVdso()
    {
        var own = ProcFs.ReadMaps(calls.Memory.Pid).Where(m => m.Path is "[vdso]" or "[vvar]" or "[vvar_vclock]").OrderBy(m => m.Start).ToList();
        var saved = image.Mm.Vmas.Where(v => v.Kind is VmaKind.VmaVdso or VmaKind.VmaVvar or VmaKind.VmaVvarVclock).OrderBy(v => v.Start).ToList();
        if (saved.Count == 0)
        {
            foreach (var m in own)
                calls.Munmap(m.Start, m.Length);
            return;
        }
        bool same = own.Count == saved.Count && own.Zip(saved).All(p => p.First.Path == p.Second.Name && p.First.Length == p.Second.End - p.Second.Start)
            && own.Zip(saved).Select(p => p.Second.Start - p.First.Start).Distinct().Count() == 1;
        if (!same)
            throw new CheckpointException(
                $"the vdso of this kernel ({string.Join(", ", own.Select(m => $"{m.Path} {m.Length / PageSize}p"))}) differs from the saved one ({string.Join(", ", saved.Select(v => $"{v.Name} {(v.End - v.Start) / PageSize}p"))}); restore on the kernel the checkpoint was taken on");
        ulong delta = saved[0].Start - own[0].Start;
        if (delta == 0)
            return;
        // Two hops, so no region ever lands on its own current place.
        ulong span = own[^1].End - own[0].Start;
        var used = image.Mm.Vmas.Select(v => (v.Start, v.End)).Concat(own.Select(m => (m.Start, m.End))).Append((trampoline, trampoline + HuskProcess.TrampolineSize));
        ulong stopover = AddressHoles.Find(used, span);
        foreach (var m in own)
            calls.MremapFixed(m.Start, m.Length, stopover + (m.Start - own[0].Start));
        foreach (var m in own)
            calls.MremapFixed(stopover + (m.Start - own[0].Start), m.Length, m.Start + delta);
    }

    /// <summary>Every saved mapping made and filled, each page checked against its checksum (a lazy restore's pager places and checks the rest).</summary>
    /// <param name="pageFilePath">Where the page file of a process (0: this one) is, in this checkpoint or a source of it.</param>
    /// <param name="pagesOf">That page file, opened here (for compressed pages).</param>
    /// <param name="pageFile">The page file a page that fails its checksum is said to be from.</param>
    public void MapAndFill(Func<int, PageFileRef, string> pageFilePath, Func<int, PageFileRef, PageFileReader> pagesOf, string pageFile)
    {
        _pageFile = pageFile;
        _pageFilePath = pageFilePath;
        _pagesOf = pagesOf;
        try
        {
            var fills = PlanFills();
            var lazy = fills.Where(IsLazy).ToHashSet();
            Prefetch(fills.Where(f => !lazy.Contains(f)));

            // Which pages go in how: the process's own long reads (in order), the short pieces
            // written from here, the compressed runs. The page files the process reads are opened
            // in it as they are planned, before the first mapping: opening one takes the lowest free
            // fd, which the batch's file mappings count on having to themselves.
            var plan = new FillPlan();
            var readsBefore = new Dictionary<MappingFill, int>();
            foreach (var fill in fills)
            {
                if (!lazy.Contains(fill))
                    foreach (var (owner, runs) in fill.Parts)
                        Plan(owner, runs, plan);
                readsBefore[fill] = plan.Reads.Count;
            }
            _spareFd = LowestFreeFd();

            // Every mapping made and its long reads queued, in as few stops of the process as its
            // calls fit in; then the short pieces and compressed runs written from here (those that
            // go over what the process read, after it); then each mapping given its protection and advice.
            int next = 0;
            foreach (var fill in fills)
            {
                Map(fill.Vma, lazy.Contains(fill) ? (int)fill.Vma.Prot : fill.MapProt);
                AdviseBeforeFill(fill.Vma);
                for (; next < readsBefore[fill]; next++)
                    ReadItself(plan.Reads[next]);
            }
            batch.Flush();
            HandOverLazy(lazy);
            // What the process read is checked in place while the rest is written (other pages).
            Beside(_readInPlace.Count == 0 ? null : () => PageVerifier.Verify(calls.Memory.Pid, _readInPlace, pageFile), () =>
            {
                WriteScattered(plan.Pieces);
                foreach (var (owner, run) in plan.Blocks)
                    FillCompressed(owner, run);
            });
            foreach (var fill in fills)
            {
                if (fill.MapProt != (int)fill.Vma.Prot && !lazy.Contains(fill))
                    batch.Mprotect(fill.Vma.Start, fill.Vma.End - fill.Vma.Start, (int)fill.Vma.Prot);
                AdviseAfterFill(fill.Vma);
            }
            batch.Flush();
        }
        finally
        {
            foreach (int fd in _pageFds.Values)
                calls.Close(fd);
            _pageFds.Clear();
        }
    }

    /// <summary>
    /// Page data still arriving (a post-copy migration): every run placed now is asked for at once,
    /// so that they come in one stream instead of a question and an answer each.
    /// </summary>
    private void Prefetch(IEnumerable<MappingFill> eager)
    {
        var wanted = new Dictionary<PageFileReader, List<(ulong, ulong)>>();
        foreach (var fill in eager)
            foreach (var (owner, runs) in fill.Parts)
                foreach (var run in runs)
                {
                    // A page file on this disk already: nothing to ask for (and a chain's end has
                    // ~180 000 runs for 2 GiB, whose list alone took 30 ms in fresh memory).
                    var reader = _pagesOf!(owner, run.StoredIn);
                    if (reader.IsWhole)
                        continue;
                    if (!wanted.TryGetValue(reader, out var ranges))
                        wanted[reader] = ranges = [];
                    ranges.Add((run.FileOffset, run.IsBlock ? run.StoredLength : run.Count * PageSize));
                }
        foreach (var (reader, ranges) in wanted)
            reader.Prefetch(ranges);
    }

    /// <summary>
    /// Whether a mapping's pages can wait for the pager: private memory of the process's own (its
    /// pages in its own page files), big enough, and with nothing that would touch it all at once or
    /// forbid the pager to place pages (mlock, guard pages, seals, droppable memory). Nor memory a
    /// forked child does not get as it is (MADV_WIPEONFORK, MADV_DONTFORK): the pager would serve
    /// the child its parent's pages, as it does for the rest of a child's missing memory.
    /// </summary>
    private bool IsLazy(MappingFill fill)
    {
        var vma = fill.Vma;
        const VmFlags Eager = VmFlags.Locked | VmFlags.Droppable | VmFlags.Sealed | VmFlags.MaybeGuard | VmFlags.WipeOnFork | VmFlags.DontCopy;
        return Pager is not null && vma.Kind is VmaKind.VmaAnonymous or VmaKind.VmaHeap or VmaKind.VmaStack && !vma.Shared
            && ((VmFlags)vma.VmFlags & Eager) == 0 && vma.Guards.Count == 0
            && fill.Parts is [(0, var runs)]
            && runs.Sum(r => (long)r.Count) * (long)PageSize >= (long)LazyAtLeast;
    }

    /// <summary>
    /// The lazy mappings, made and still empty, registered with a userfaultfd made in the process
    /// and handed to the pager with their runs: from here on a touch of them waits for its page.
    /// </summary>
    private void HandOverLazy(HashSet<MappingFill> lazy)
    {
        if (lazy.Count == 0)
            return;
        var uffd = Kernel.Memory.MissingPages.Create(calls.Memory.Pid, calls);
        try
        {
            foreach (var fill in lazy)
                uffd.Register(fill.Vma.Start, fill.Vma.End);
        }
        catch
        {
            uffd.Dispose();
            throw;
        }
        var files = LazyPageFiles!;
        Pager!.Add(uffd, [.. lazy.Select(f => (IList<PageRun>)f.Parts[0].Runs)], where => files.Of(0, where), _pageFile);
    }

    /// <summary>
    /// The mappings to make, in address order, with the runs that fill them (a shared anonymous
    /// mapping's are its object's); System V attachments are made here and now, whole.
    /// </summary>
    private List<MappingFill> PlanFills()
    {
        var fills = new List<MappingFill>();
        var runs = image.Mm.Pages.ToArray();
        int next = 0;
        var attached = new HashSet<Vma>();
        foreach (var vma in image.Mm.Vmas)
        {
            if (vma.Kind is VmaKind.VmaVdso or VmaKind.VmaVvar or VmaKind.VmaVvarVclock or VmaKind.VmaVsyscall || vma.Inherited)
                continue;
            int first = next;
            while (next < runs.Length && runs[next].Address < vma.End)
                next++;
            if (vma.Kind == VmaKind.VmaSysv)
            {
                // Every piece of its attachment at once (nothing to fill: the segment holds the pages).
                if (attached.Add(vma))
                    AttachSysv(vma, attached);
                continue;
            }
            // Shared anonymous memory has one mapping: its object's pages are that mapping's.
            var (shmemRuns, shmemPages) = AnonymousShmem(vma);
            var parts = new List<(int, ArraySegment<PageRun>)>();
            if (next > first)
                parts.Add((0, new ArraySegment<PageRun>(runs, first, next - first)));
            if (shmemRuns.Length > 0)
                parts.Add((shmemPages, shmemRuns));
            int mapProt = parts.Count > 0 ? (int)vma.Prot | Mman.ProtRead | Mman.ProtWrite : (int)vma.Prot;
            fills.Add(new MappingFill(vma, mapProt, parts));
        }
        return fills;
    }

    /// <summary>A mapping to make, mapped with MapProt while it is filled with its parts: runs of the page files of a process (0: this one).</summary>
    private sealed record MappingFill(Vma Vma, int MapProt, List<(int PagesOf, ArraySegment<PageRun> Runs)> Parts);

    /// <summary>The lowest fd the process has free: what each openat of the batch gets, and closes again.</summary>
    private int LowestFreeFd()
    {
        var open = ProcFs.ListFds(calls.Memory.Pid).ToHashSet();
        int fd = 0;
        while (open.Contains(fd))
            fd++;
        return fd;
    }

    /// <summary>The page file of a process (0: this one) in a source checkpoint, opened in the new process once.</summary>
    private int PageFd(int pid, PageFileRef where)
    {
        if (!_pageFds.TryGetValue((pid, where), out int fd))
            _pageFds[(pid, where)] = fd = OpenPageFile(_pageFilePath!(pid, where));
        return fd;
    }

    /// <summary>
    /// O_DIRECT where the file system has it: the pages go from the disk straight into the process,
    /// without a second copy in the page cache (the checkpoint wrote them the same way).
    /// </summary>
    private int OpenPageFile(string path)
    {
        int flags = OpenFlags.ReadOnly | OpenFlags.CloseOnExec;
        if (Environment.GetEnvironmentVariable("AMBER_NO_DIRECT_IO") != "1")
        {
            try
            {
                int fd = calls.OpenAt(path, flags | OpenFlags.Direct);
                _directIo = true;
                return fd;
            }
            catch (Kernel.KernelCallException e) when (e.Errno == Kernel.Errnos.EINVAL)
            {
            }
        }
        return calls.OpenAt(path, flags);
    }

    /// <summary>The runs of a shared anonymous mapping's object at their addresses, and whose page file holds them.</summary>
    private (PageRun[] Runs, int PagesOf) AnonymousShmem(Vma vma)
    {
        // An anonymous object in a slot was filled when it was created.
        if (vma.Kind != VmaKind.VmaShmem || image.Mm.Shmem.FirstOrDefault(s => s.Id == vma.ShmemId) is not { Anonymous: true, InSlot: false } shmem)
            return ([], 0);
        return ([.. shmem.Pages
            .Where(r => r.Address >= vma.FileOffset && r.Address + r.Count * PageSize <= vma.FileOffset + (vma.End - vma.Start))
            .Select(r => { var at = r.Clone(); at.Address = vma.Start + (r.Address - vma.FileOffset); return at; })], shmem.PagesOf);
    }

    /// <summary>Queues the mapping: for a file, its open, the mmap and the close.</summary>
    private void Map(Vma vma, int prot)
    {
        ulong length = vma.End - vma.Start;
        var flags = (VmFlags)vma.VmFlags;
        if (vma.Kind == VmaKind.VmaShmem)
        {
            if (memfds.TryGetValue(vma.ShmemId, out int memfd))
                batch.Mmap(vma.Start, length, prot, (vma.Shared ? Mman.MapShared : Mman.MapPrivate) | Mman.MapFixedNoReplace, memfd, vma.FileOffset);
            else
                batch.Mmap(vma.Start, length, prot, Mman.MapShared | Mman.MapAnonymous | Mman.MapFixedNoReplace);
            return;
        }
        if (vma.Kind is VmaKind.VmaFile or VmaKind.VmaDeletedFile)
        {
            OpenMapped(vma);
            batch.Mmap(vma.Start, length, prot, (vma.Shared ? Mman.MapShared : Mman.MapPrivate) | Mman.MapFixedNoReplace
                | ((flags & VmFlags.NoReserve) != 0 ? Mman.MapNoReserve : 0), _spareFd, vma.FileOffset);
            batch.Close(_spareFd);
            return;
        }
        int type = (flags & VmFlags.Droppable) != 0 ? Mman.MapDroppable : Mman.MapPrivate;
        batch.Mmap(vma.Start, length, prot, type | Mman.MapAnonymous | Mman.MapFixedNoReplace | (vma.GrowsDown ? Mman.MapGrowsDown : 0)
            | ((flags & VmFlags.NoReserve) != 0 ? Mman.MapNoReserve : 0));
    }

    /// <summary>
    /// Queues the open of a file mapping's file, into the spare fd: read-write for a shared mapping
    /// that is writable or may be made so (VmFlags "mw": the program's fd was read-write, so a later
    /// mprotect to PROT_WRITE works), read-only otherwise (the mapping then refuses PROT_WRITE, as it did).
    /// </summary>
    private void OpenMapped(Vma vma)
    {
        string path = vma.Kind == VmaKind.VmaFile ? vma.Path : deletedPath(vma.ShmemId);
        bool writable = vma.Shared && (vma.Prot & Mman.ProtWrite) != 0;
        bool mayWrite = vma.Shared && ((VmFlags)vma.VmFlags & VmFlags.MayWrite) != 0;
        const int CloseOnExec = OpenFlags.CloseOnExec;
        if (writable || !mayWrite)
        {
            batch.OpenAt(path, (writable ? OpenFlags.ReadWrite : OpenFlags.ReadOnly) | CloseOnExec, _spareFd);
            return;
        }
        batch.OpenAt(path, OpenFlags.ReadWrite | CloseOnExec, _spareFd, (_, e) =>
        {
            if (e == null)
                return false;
            warnings.Add($"process {image.Pid}: the shared mapping {vma.Start:x}-{vma.End:x} of {path} comes back read-only for good " +
                $"(it was read-only but could be made writable; opening the file to write failed: {e.Message})");
            int fd = calls.OpenAt(path, OpenFlags.ReadOnly | CloseOnExec);
            if (fd != _spareFd)
                throw new CheckpointException($"process {image.Pid}: {path} opened as fd {fd}, not {_spareFd}");
            return true;
        });
    }

    /// <summary>How the pages of a process go in: <see cref="Reads"/> in order, <see cref="Pieces"/> and <see cref="Blocks"/> written from here.</summary>
    private sealed class FillPlan
    {
        /// <summary>The process's own reads, in the order it makes them.</summary>
        public List<ProcessRead> Reads { get; } = [];

        /// <summary>Short pieces, written from here.</summary>
        public List<Piece> Pieces { get; } = [];

        /// <summary>Compressed (or encrypted) runs, written from here.</summary>
        public List<(int PagesOf, PageRun Run)> Blocks { get; } = [];
    }

    /// <summary>
    /// A read the process makes itself, straight into place: Length bytes at Offset of its page file
    /// Fd (from Pages), to Address. Pages null: the memory only faulted in, for compressed runs.
    /// </summary>
    private readonly record struct ProcessRead(PageFileReader? Pages, int Fd, ulong Address, ulong Offset, ulong Length);

    /// <summary>
    /// Plans the runs of a mapping (of the page files of process <paramref name="pagesOf"/>, 0: this
    /// one): stretches a page file holds in one piece under newer pages (<see cref="ReadThrough"/>)
    /// read whole by the process, and the newer pages then written over them; of the rest, long
    /// stretches read by the process, short pieces and compressed runs written from here.
    /// </summary>
    private void Plan(int pagesOf, ArraySegment<PageRun> runs, FillPlan plan)
    {
        var stretches = ReadThrough(pagesOf, runs);
        if (stretches.Count == 0)
        {
            Plan(pagesOf, runs, plan, placed: false);
            return;
        }
        var over = new List<PageRun>();
        var rest = new List<PageRun>();
        int next = 0;
        foreach (var (first, last) in stretches)
        {
            for (; next < first; next++)
                rest.Add(runs[next]);
            var where = runs[first].StoredIn;
            ulong address = runs[first].Address, offset = runs[first].FileOffset;
            ulong end = runs[last].Address + runs[last].Count * PageSize;
            for (int k = first; k <= last; k++)
            {
                if (InOneStretch(runs[first], runs[k]))
                    _readInPlace.Add(runs[k]);
                else
                    over.Add(runs[k]);
            }
            next = last + 1;
            plan.Reads.Add(new ProcessRead(_pagesOf!(pagesOf, where), PageFd(pagesOf, where), address, offset, end - address));
        }
        for (; next < runs.Count; next++)
            rest.Add(runs[next]);
        Plan(pagesOf, over.ToArray(), plan, placed: true); // after the stretches: the process reads in turn, the pieces are written after its reads
        Plan(pagesOf, rest.ToArray(), plan, placed: false);
    }

    /// <param name="placed">Whether the runs go over memory the process reads first (nothing to fault in for them).</param>
    private void Plan(int pagesOf, ArraySegment<PageRun> runs, FillPlan plan, bool placed)
    {
        for (int i = 0; i < runs.Count;)
        {
            if (runs[i].IsBlock)
            {
                // Compressed (or encrypted) runs next to each other: their memory faulted in at once
                // (as a direct read would), then each written into place.
                int k = i + 1;
                while (k < runs.Count && runs[k].IsBlock && runs[k].Address == runs[k - 1].Address + runs[k - 1].Count * PageSize)
                    k++;
                plan.Reads.Add(new ProcessRead(null, -1, runs[i].Address, 0, runs[k - 1].Address + runs[k - 1].Count * PageSize - runs[i].Address));
                for (; i < k; i++)
                    plan.Blocks.Add((pagesOf, runs[i]));
                continue;
            }
            // Adjacent runs (and their file data) are usually contiguous: one read for the lot.
            ulong address = runs[i].Address;
            ulong offset = runs[i].FileOffset;
            ulong length = runs[i].Count * PageSize;
            var where = runs[i].StoredIn;
            int j = i + 1;
            while (j < runs.Count && !runs[j].IsBlock && runs[j].StoredIn == where && runs[j].Address == address + length && runs[j].FileOffset == offset + length && length < 1UL << 30)
            {
                length += runs[j].Count * PageSize;
                j++;
            }
            var covered = runs.Slice(i, j - i); // not copied: ~90 000 pieces for a chain's end of 2 GiB
            i = j;
            if (length < ReadItselfAtLeast)
            {
                plan.Pieces.Add(new Piece(pagesOf, where, address, offset, (int)length, covered, placed));
                continue;
            }
            _readInPlace.AddRange(covered);
            plan.Reads.Add(new ProcessRead(_pagesOf!(pagesOf, where), PageFd(pagesOf, where), address, offset, length)); // after every read planned before it
        }
    }

    // What a page file may hold under the pages written since, in a stretch it is read through:
    // more, and the stretch is not one file's data with a few pages changed in it.
    private const ulong ReadThroughAtMost = 256 << 10;

    /// <summary>
    /// The stretches of memory a page file holds in one piece under the pages written since: an
    /// incremental chain's end, or its merge, leaves the base checkpoint's pages in short pieces
    /// between the newer ones (~90 000 pieces for 2 GiB after ten checkpoints of 1 %), each a copy
    /// of its own. Each stretch here is instead read whole by the process, straight into place, as
    /// a full checkpoint is, and the newer pages written over it afterwards. Only a page file whose
    /// runs sit at one distance between address and file offset across the stretch, with no page
    /// missing in it (a zero page must stay zero), and whole on this disk (not arriving).
    /// </summary>
    /// <returns>(first, last) run of each stretch, in order: runs of that file at both ends.</returns>
    private List<(int First, int Last)> ReadThrough(int pagesOf, ArraySegment<PageRun> runs)
    {
        var stretches = new List<(int, int)>();
        for (int i = 0; i < runs.Count; i++)
        {
            var r = runs[i];
            if (r.IsBlock || !_pagesOf!(pagesOf, r.StoredIn).IsWhole)
                continue;
            int last = i;
            bool mixed = false;
            ulong between = 0;
            for (int j = i + 1; j < runs.Count; j++)
            {
                var q = runs[j];
                if (q.IsBlock || q.Address != runs[j - 1].Address + runs[j - 1].Count * PageSize || q.Address + q.Count * PageSize - r.Address > 1UL << 30)
                    break;
                if (InOneStretch(r, q))
                {
                    mixed |= between > 0;
                    last = j;
                    between = 0;
                }
                else if ((between += q.Count * PageSize) > ReadThroughAtMost)
                    break;
            }
            if (mixed && runs[last].Address + runs[last].Count * PageSize - r.Address >= ReadItselfAtLeast)
            {
                stretches.Add((i, last));
                i = last;
            }
        }
        return stretches;
    }

    /// <summary>Whether a page file holds <paramref name="b"/> where a stretch read whole from <paramref name="a"/> on puts it: the same file, at the same distance between address and offset.</summary>
    private static bool InOneStretch(PageRun a, PageRun b) => a.StoredIn == b.StoredIn && a.Address - a.FileOffset == b.Address - b.FileOffset;

    /// <summary>Queues a read of the process's, straight into place: in the file first, if it is still arriving.</summary>
    private void ReadItself(ProcessRead read)
    {
        var (pages, pageFd, address, offset, length) = read;
        if (pages is null)
        {
            batch.PopulateWrite(address, length);
            return;
        }
        pages.Await(offset, length);
        // A direct read faults its destination in as one bulk operation already; a buffered one
        // would fault page by page, ~6× slower than populating first.
        if (!_directIo)
            batch.PopulateWrite(address, length);
        batch.Pread(pageFd, address, length, offset, (n, e) => e == null && ReadRest(pageFd, address, length, offset, n),
            n => PageProgress.Read(n)); // read by the process, not through the image layer
    }

    /// <summary>After a short read (of a page file on a file system that gives them): the rest, a call at a time.</summary>
    private bool ReadRest(int pageFd, ulong address, ulong length, ulong offset, long n)
    {
        for (ulong at = 0; ;)
        {
            if (n <= 0)
                throw new CheckpointException($"reading pages for {address + at:x} from the image returned {n}");
            at += (ulong)n;
            if (at >= length)
                return true;
            n = calls.Pread(pageFd, address + at, length - at, offset + at);
            PageProgress.Read(n);
        }
    }

    /// <summary>
    /// Short pieces of memory: read a page file at a time in file order, through a window that takes
    /// in many at once (gaps and all), and written into place a few MiB and up to a thousand pieces
    /// per system call, on threads of their own. Meanwhile the process faults in the stretches they
    /// go to, one call per stretch: several times faster than the page-by-page faults of
    /// process_vm_writev where it comes first (a first touch is slow on VMs, docs/kernel.md §13), and
    /// where it does, the populate leaves the page as written. The pages are checked once in place,
    /// as all are (PageVerifier).
    /// </summary>
    private void WriteScattered(List<Piece> pieces)
    {
        if (pieces.Count == 0)
            return;
        // Where the process read first, the memory is in already.
        var unplaced = pieces.Where(p => !p.Placed).OrderBy(p => p.Address).ToList();
        var populate = new List<(ulong Address, ulong Length)>();
        for (int i = 0; i < unplaced.Count;)
        {
            int j = i + 1;
            ulong stretchEnd = unplaced[i].Address + (ulong)unplaced[i].Length;
            for (; j < unplaced.Count && unplaced[j].Address == stretchEnd; j++)
                stretchEnd += (ulong)unplaced[j].Length;
            if (stretchEnd - unplaced[i].Address >= PopulateAtLeast)
                populate.Add((unplaced[i].Address, stretchEnd - unplaced[i].Address));
            i = j;
        }
        Beside(() => Copy(pieces), populate.Count == 0 ? null : () =>
        {
            foreach (var (address, length) in populate)
                batch.PopulateWrite(address, length);
            batch.Flush();
        });
    }

    /// <summary>
    /// Runs <paramref name="beside"/> on the thread pool while <paramref name="work"/> runs here, and
    /// returns once both are done (what runs beside uses this restorer's buffers: never left running);
    /// a failure of <paramref name="work"/> is said first. Either one null: the other runs here alone
    /// (a task costs more than little work).
    /// </summary>
    private static void Beside(Action? beside, Action? work)
    {
        if (beside is null || work is null)
        {
            (beside ?? work)?.Invoke();
            return;
        }
        var task = Task.Run(beside);
        try
        {
            work();
        }
        finally
        {
            ((IAsyncResult)task).AsyncWaitHandle.WaitOne();
        }
        task.GetAwaiter().GetResult();
    }

    // Page files copied from at once: each is read a direct read at a time, so one alone leaves the
    // disk idle between its reads (the ten files of a 10-deep chain's end: 900 ms one after the
    // other, for 350 MiB). Each copier has its own buffers.
    private const int CopiersAtMost = 4;
    // And one for every so many bytes of pieces: for less, a thread and its buffers cost more than they save.
    private const long CopierAtLeast = 16 << 20;
    private readonly System.Collections.Concurrent.ConcurrentBag<(PageBuffer Window, PageBuffer Scatter)> _copyBuffers = [];

    private void Copy(List<Piece> pieces)
    {
        var files = pieces.GroupBy(p => (p.PagesOf, p.Where))
            .Select(g => (Pages: _pagesOf!(g.Key.PagesOf, g.Key.Where), Pieces: g.OrderBy(p => p.Offset).ToList()))
            .OrderByDescending(f => f.Pieces.Sum(p => (long)p.Length));
        var queue = new System.Collections.Concurrent.ConcurrentQueue<(PageFileReader, List<Piece>)>(files);
        bool failed = false;
        void Copier()
        {
            var buffers = _copyBuffers.TryTake(out var kept) ? kept : (Window: new PageBuffer(PageWindow.SpanBytes), Scatter: new PageBuffer(ScatterBytes));
            try
            {
                while (!Volatile.Read(ref failed) && queue.TryDequeue(out var file))
                    CopyFile(file.Item1, file.Item2, buffers.Window, buffers.Scatter);
            }
            catch
            {
                Volatile.Write(ref failed, true);
                throw;
            }
            finally
            {
                _copyBuffers.Add(buffers);
            }
        }
        // Threads of their own: they wait on the disk, and the thread pool of a 2-core machine adds threads slowly.
        int copiers = (int)Math.Clamp(pieces.Sum(p => (long)p.Length) / CopierAtLeast, 1, Math.Min(CopiersAtMost, queue.Count));
        var others = Enumerable.Range(1, copiers - 1).Select(_ => Task.Factory.StartNew(Copier, TaskCreationOptions.LongRunning)).ToArray();
        try
        {
            Copier();
        }
        finally
        {
            Task.WaitAny([Task.WhenAll(others)]); // their buffers are this restorer's
        }
        foreach (var other in others)
            other.GetAwaiter().GetResult();
    }

    /// <summary>The pieces a page file holds, read in file order through a window and written into place in bulk.</summary>
    private void CopyFile(PageFileReader pages, List<Piece> ordered, PageBuffer windowBuffer, PageBuffer scatter)
    {
        var ranges = new List<(ulong Address, int Length)>(Kernel.Memory.RemoteMemory.MaxScattered);
        int used = 0;
        void Flush()
        {
            if (ranges.Count == 0)
                return;
            calls.Memory.WriteScattered(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(ranges), scatter.Span[..used]);
            ranges.Clear();
            used = 0;
        }
        var window = new PageWindow(pages, ordered.Select(p => (p.Offset, (ulong)p.Length)), windowBuffer);
        foreach (var (_, _, address, offset, length, runs, _) in ordered)
        {
            if (used + length > ScatterBytes || ranges.Count == Kernel.Memory.RemoteMemory.MaxScattered)
                Flush();
            var data = scatter.Span.Slice(used, length);
            try
            {
                window.Read(offset, data);
            }
            catch (ImageFormatException e)
            {
                throw new CheckpointException(e.Message, e);
            }
            foreach (var run in runs)
                PageVerifier.Check(data.Slice((int)(run.Address - address), (int)(run.Count * PageSize)), run, _pageFile);
            ranges.Add((address, length));
            used += length;
        }
        Flush();
    }

    /// <summary>Pages [Address, Address + Length) of the process, at Offset of the page file Where of process PagesOf (0: this one).</summary>
    /// <param name="Placed">It goes over memory the process read into place already (nothing to fault in).</param>
    private readonly record struct Piece(int PagesOf, PageFileRef Where, ulong Address, ulong Offset, int Length, ArraySegment<PageRun> Runs, bool Placed);

    /// <summary>A compressed or encrypted run: decrypted, decompressed (and checked) here, written into the process.</summary>
    private void FillCompressed(int pagesOf, PageRun run)
    {
        // One buffer for every run (a block is at most PageCodec.MaxPages): fresh memory is slow on VMs.
        _decompressed ??= new byte[PageCodec.MaxPages * (int)PageSize];
        var data = _decompressed.AsSpan(0, (int)run.Count * (int)PageSize);
        try
        {
            _pagesOf!(pagesOf, run.StoredIn).ReadRun(run, data);
        }
        catch (ImageFormatException e)
        {
            throw new CheckpointException(e.Message, e);
        }
        calls.Memory.Write(run.Address, data);
    }
}
