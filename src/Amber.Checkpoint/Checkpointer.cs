using System.Diagnostics;
using Amber.Checkpoint.Freeze;
using Amber.Checkpoint.Resources;
using Amber.Checkpoint.Resources.Cred;
using Amber.Checkpoint.Resources.DeletedFiles;
using Amber.Checkpoint.Resources.Fifos;
using Amber.Checkpoint.Resources.Isolation;
using Amber.Checkpoint.Resources.Memory;
using Amber.Checkpoint.Resources.Pipes;
using Amber.Checkpoint.Resources.ProcessGroups;
using Amber.Checkpoint.Resources.SharedMemory;
using Amber.Checkpoint.Resources.Sockets;
using Amber.Checkpoint.Resources.SystemV;
using Amber.Checkpoint.Resources.Terminals;
using Amber.Checkpoint.Resources.Threads;
using Amber.Checkpoint.Resources.Zombies;
using Amber.Checkpoint.Storage;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;
using Amber.Kernel.Memory;
using Amber.Kernel.Proc;
using Amber.Kernel.Processes;

namespace Amber.Checkpoint;

/// <summary>
/// Checkpoint of a process tree, or of a group of trees: Preflight → Freeze (one barrier) → dump
/// thread state → dump files → dump memory → resolve what processes share → write the process images
/// → commit → end or resume the processes.
/// The checkpoint is committed before the processes are ended, so nothing is ever lost; on any failure
/// (or cancellation) every process is resumed exactly as it was and the partial image is removed.
/// </summary>
public static class Checkpointer
{
    /// <summary>
    /// Saves the process tree rooted at <paramref name="pid"/> (every descendant, every thread) into
    /// <see cref="CheckpointOptions.ImagesDirectory"/>, then ends it, or lets it run on with
    /// <see cref="CheckpointOptions.LeaveRunning"/>. Needs root, or CAP_SYS_PTRACE and CAP_CHECKPOINT_RESTORE.
    /// The work runs on a thread of its own (ptrace is bound to the thread that attached); the call
    /// returns when the checkpoint is committed.
    /// </summary>
    /// <param name="pid">The root of the tree: a process (not a thread), not this one, not init.</param>
    /// <param name="options">Where to write, and how.</param>
    /// <param name="cancel">Stops the checkpoint before it is committed: the tree runs on as it was, nothing is written.</param>
    /// <returns>What was saved, and how long the tree was frozen.</returns>
    /// <exception cref="UnsupportedResourceException">The tree holds something Amber cannot save (named in the message); it runs on untouched.</exception>
    /// <exception cref="CheckpointException">The checkpoint cannot be taken (the message says why, in one line); the tree runs on untouched.</exception>
    /// <exception cref="Kernel.TargetGoneException">There is no process <paramref name="pid"/>.</exception>
    /// <exception cref="Kernel.KernelCallException">A system call failed (access denied, say).</exception>
    public static CheckpointResult Checkpoint(int pid, CheckpointOptions options, CancellationToken cancel = default) =>
        TracerThread.Run("amber-checkpoint", () =>
        {
            Preflight(pid);
            return WhilePassing(options, cancel, () => Run(check => FrozenGroup.Freeze(pid, check), OwnNamespaces.Join(pid), $"process {pid}", group: null, options, cancel));
        });

    /// <summary>Every process of the group's cgroup, stopped at one barrier (the cgroup freezer), saved as one checkpoint.</summary>
    /// <param name="group">The group's name, for messages.</param>
    /// <param name="cgroup">The cgroup holding every process of the group.</param>
    /// <param name="options">Where to write, and how.</param>
    /// <param name="cancel">Stops the checkpoint before it is committed.</param>
    public static CheckpointResult CheckpointGroup(string group, Cgroup cgroup, CheckpointOptions options, CancellationToken cancel = default) =>
        TracerThread.Run("amber-checkpoint", () =>
        {
            // The group's namespaces are its first process's (the others are checked against them).
            var own = cgroup.Processes() is [int first, ..] && ProcFs.Exists(first) ? OwnNamespaces.Join(first) : OwnNamespaces.None;
            return WhilePassing(options, cancel, () => Run(check => FrozenGroup.Freeze(cgroup, check), own, $"group {group}", group, options, cancel));
        });

    private const int PassingTries = 20;
    private static readonly TimeSpan PassingPause = TimeSpan.FromMilliseconds(25);

    /// <summary>
    /// A checkpoint refused for a passing state (<see cref="UnsupportedResourceException.Passing"/>: a
    /// file watcher's events not read yet) is taken again after a pause in which the processes run,
    /// up to half a second. Not with write trackers: the refused attempt has read and reset them.
    /// </summary>
    private static CheckpointResult WhilePassing(CheckpointOptions options, CancellationToken cancel, Func<CheckpointResult> attempt)
    {
        for (int tries = 1; ; tries++)
        {
            try
            {
                return attempt();
            }
            catch (UnsupportedResourceException e) when (e.Passing && tries < PassingTries && options.Trackers.Count == 0)
            {
                cancel.WaitHandle.WaitOne(PassingPause);
                cancel.ThrowIfCancellationRequested();
            }
        }
    }

    /// <summary>Room for the allocations of a freeze (a process's image, lists of page runs) with no collection.</summary>
    private const long NoCollectionBytes = 64L << 20;

    /// <summary>
    /// Room for the allocations of a checkpoint whose processes stay frozen until it is written: its
    /// image's page runs, composed from the parent's (their objects about eight times the parent's
    /// encoded images), the image's encoding (a pooled buffer: up to twice its size), and what the
    /// page writer notes. Less, and the room ran out as the image was sealed: a collection of 10–13
    /// ms under a hand-over's freeze.
    /// </summary>
    private static long FrozenThroughoutBytes(ParentCheckpoint? parent) =>
        Math.Clamp((parent?.ImageBytes ?? 0) * 10 + (4L << 20), 16L << 20, NoCollectionBytes);

    private static CheckpointResult Run(Func<Action<int>, FrozenGroup> freeze, OwnNamespaces own, string what, string? group, CheckpointOptions options, CancellationToken cancel)
    {
        var total = Stopwatch.StartNew();
        using var trace = new PhaseTrace("checkpoint");
        var stale = NetworkLock.RemoveStale(); // an amber that died may have left one

        var parent = options.Parent is { } p ? ParentCheckpoint.Open(p, options.ImagesDirectory, options.Key) : null;
        parent?.Preload();
        // Processes that stay frozen until the checkpoint is whole (a hand-over, --stop) wait for its
        // image to be composed and written too: the memory for that is faulted in first, before the
        // writes to copy early are read (a group left running is frozen only for the copy).
        long noCollectionBytes = options.LeaveRunning ? NoCollectionBytes : FrozenThroughoutBytes(parent);
        if (!options.LeaveRunning)
        {
            NoCollections.Touch(noCollectionBytes);
            HostKey.Warm(); // its manifest is signed before they run again (an incremental's parent, opened and checked, has done it already)
        }
        var writtenBefore = parent is null ? [] : WrittenBeforeTheFreeze(options.Trackers);
        trace.Mark("written pages (running)");
        using var writer = CheckpointWriter.Create(options.ImagesDirectory, options.Key, directIo: !options.PagesThroughCache);
        Task? durable = null; // a hand-over's checkpoint, sealed, made durable while it is handed over
        if (!options.LeaveRunning && parent is not null)
        {
            writer.Prefault(PrefaultBytes(writtenBefore)); // through the page cache: its first touch before the freeze
            trace.Mark("page cache");
        }
        using var buffers = new PageCopyPool(BuffersFor(writtenBefore), MemoryDumper.BufferSize);
        trace.Mark("buffers");
        // What no dump takes goes back to the pool with this, before the pool goes.
        using var preCopied = PreCopies.Take(writtenBefore, buffers, buffers.Buffers.Count - LeastBuffers);
        trace.Mark("pages copied (running)");
        cancel.ThrowIfCancellationRequested();

        // The region begun before a barrier's word (across nodes) is awaited: its start, a collection,
        // comes while the processes still run and the other nodes get ready, not between the word and the freeze.
        var noCollections = NoCollections.Begin(noCollectionBytes);
        try
        {
            if (options.BeforeFreeze?.Invoke() is { } notNow)
                throw new CheckpointException($"checkpoint of {what} abandoned before its freeze: {notNow}; nothing was frozen");
        }
        catch
        {
            noCollections.Dispose();
            throw;
        }
        double frozenAtUnixMs = (DateTime.UtcNow - DateTime.UnixEpoch).TotalMilliseconds;
        var frozenAt = Stopwatch.StartNew();
        using var frozen = freeze(pid => CheckMember(pid, own.NotJoinedByName));
        trace.Mark("freeze");
        long pages = 0, kept = 0, skipped = 0;
        StorageStats? storageStats = null;
        var trackers = new List<TrackedProcess>();
        var members = frozen.Members.ToList();
        int root = members[0].Pid;
        var warnings = new List<string>(stale);
        bool resumed = false;
        var dumps = new List<ProcessDump>(); // their pages written while the processes run again
        StorageDumper? storage = null; // likewise
        TcpRepairs? connections = null; // locked and held by amber from their reading until the processes resume or end
        NamespacesImage? namespaces = null; // theirs, if they have any of their own (this thread in their network namespace)
        try
        {
            Faults.Check(FaultPoint.AfterFreeze);
            if (members.Any(m => m.Pid == Environment.ProcessId))
                throw new CheckpointException($"{what} contains amber itself");
            warnings.AddRange(own.CheckOwned([.. members.Select(m => m.Pid)], rootParent: ProcFs.ReadStat(root).ParentPid));
            namespaces = own.Image(members[0].Pid);
            var ids = own.PidNamespace is null ? ImagePids.Same : ImagePids.Read(frozen);
            var mounts = namespaces?.Mount == true ? OwnMounts.Read(root) : null;
            var dumped = new List<ProcessImage>();
            var zombies = new List<ProcessImage>();
            var run = new DumpRun(writer, buffers, new SavedObjects(), parent, options, writtenBefore, ids, own.NotJoinedByName, trace, cancel);
            foreach (var member in members)
            {
                if (member.Frozen is { } process)
                {
                    var dump = DumpProcess(process, member.ParentPid, run, preCopied.Of(process.Pid));
                    dumps.Add(dump);
                    dumped.Add(dump.Image);
                    if (dump.Tracked is { } tracked)
                        trackers.Add(tracked);
                }
                else
                {
                    zombies.Add(Zombies.Dump(member));
                }
            }
            SysvIpcDumper.Dump(frozen, dumped[0]);
            ids.CheckProcPaths(dumped, ownProcfs: mounts?.Mounts.Any(m => m.Kind == MountImage.Types.Kind.Proc && m.Target == "/proc") == true);
            var everyone = dumped.Concat(zombies).ToDictionary(i => i.Pid);
            Sessions.Check([.. members.Select(m => everyone[m.Pid])], [.. frozen.Trees.Select(t => t.RootPid)], newPidNamespace: ids.Own);
            // The files, at the same barrier as the memory.
            storage = options.Storage.Count > 0 ? StorageDumper.Capture(options.Storage, StorageExclusions(options), writer, parent, warnings, cancel) : null;
            trace.Mark("storage");
            // What several trees share has no common ancestor among them: the forest stands in for one.
            var forest = new ProcessImage { Pid = 0, Ppid = -1, Mm = new MmImage() };
            var resolved = frozen.Trees.Count > 1 ? [.. dumped, forest] : dumped;
            connections = TcpConnections.Dump(resolved);
            warnings.AddRange(connections.Warnings);
            trace.Mark("connections");
            warnings.AddRange(ResolveSharing(resolved, options));
            // Everything is read out of the processes by now: a group left running goes on while the
            // image is written out and made durable, so it is frozen only for the copy. One that is to
            // end waits for the commit, so that it is never lost.
            if (options.LeaveRunning)
            {
                if (options.AtBarrier is not null)
                    Faults.Check(FaultPoint.AtBarrier);
                if (options.AtBarrier?.Invoke() is { } abandoned)
                    throw new CheckpointException($"checkpoint of {what} abandoned: {abandoned}; {(members.Count > 1 ? "the processes run" : "the process runs")} on");
                trace.Mark("barrier");
                warnings.AddRange(connections.Resume());
                warnings.AddRange(frozen.Resume());
                resumed = true;
                frozenAt.Stop();
                noCollections.Dispose();
                trace.Mark("resume");
            }
            foreach (var (image, dumper, _) in dumps)
            {
                dumper.Finish(image.Mm);
                pages += dumper.PagesWritten;
                kept += dumper.PagesKept;
                skipped += dumper.PagesSkipped;
            }
            trace.Mark("pages written");
            storageStats = storage?.Finish();
            trace.Mark("storage written");
            // Only the earlier checkpoints whose copies are still used are named (and so kept).
            var sources = parent?.Prune([.. dumped, forest], storage?.Image) ?? [];
            if (storage is { } captured)
                writer.WriteMessage(ImageNames.Storage, ImageFileKind.Metadata, captured.Image);
            // Complete: their ids become the image's (those in their PID namespace, if they have one).
            bool hasForest = !forest.Equals(new ProcessImage { Pid = 0, Ppid = -1, Mm = new MmImage() });
            foreach (var image in dumped.Concat(zombies).Append(forest))
                ids.Translate(image);
            foreach (var image in dumped.Concat(zombies))
                writer.WriteMessage(ImageNames.Process(image.Pid), ImageFileKind.Process, image);
            if (hasForest)
                writer.WriteMessage(ImageNames.Forest, ImageFileKind.Process, forest);
            if (mounts is not null)
                writer.WriteMessage(ImageNames.Mounts, ImageFileKind.Metadata, mounts);
            Faults.Check(FaultPoint.BeforeCommit);
            cancel.ThrowIfCancellationRequested();
            var manifest = NewManifest(frozen, group, hasForest, parent, sources, storage is not null, namespaces);
            if (dumped.Append(forest).Any(i => i.Ptys.Count > 0))
                manifest.RequiredFeatures.Add(ImageFormat.TerminalsFeature);
            ids.Translate(manifest);
            if (options.BeforeEnd is not null && !options.LeaveRunning)
            {
                writer.Seal(manifest);
                durable = Task.Run(writer.MakeDurable);
                trace.Mark("sealed");
            }
            else
            {
                writer.Commit(manifest);
                trace.Mark("commit");
            }
        }
        catch (Exception e)
        {
            foreach (var tracked in trackers)
                tracked.Tracker.Dispose(); // the tracking it armed goes with it
            if (!resumed)
                connections?.Resume(); // before the processes run again, whichever way they do
            if (resumed)
                throw new CheckpointException($"checkpoint of {what} failed: {e.Message}; {(members.Count > 1 ? "the processes run" : "the process runs")} on", e);
            if (e is CheckpointException or OperationCanceledException or TargetGoneException)
                throw;
            var problems = frozen.Resume();
            throw new CheckpointException(
                $"checkpoint of {what} failed: {e.Message}; {(members.Count > 1 ? "the processes were" : "the process was")} resumed{(problems.Count > 0 ? $" with problems: {string.Join("; ", problems)}" : "")}", e);
        }
        finally
        {
            foreach (var dump in dumps)
                dump.Pages.Dispose(); // writers stopped before the partial image goes
            storage?.Dispose();
            noCollections.Dispose();
        }
        using var ending = connections;

        var frozenBeforeEnd = frozenAt.Elapsed; // what a hand-over (BeforeEnd) adds comes after
        string? keptRunning = durable is null ? null : options.BeforeEnd!(writer.TemporaryDirectory);
        string? notCommitted = null;
        if (durable is not null)
        {
            trace.Mark("hand-over");
            // Durable and in place before any process ends, whatever the hand-over said.
            notCommitted = CommitSealed(writer, durable);
            trace.Mark("commit");
            if (notCommitted is not null)
                keptRunning ??= $"its checkpoint could not be committed ({notCommitted})";
        }
        if (keptRunning is null && !options.LeaveRunning)
        {
            keptRunning = Park(connections!, options.ImagesDirectory);
            trace.Mark("connections parked");
        }
        if (keptRunning is not null)
        {
            warnings.AddRange(connections!.Resume());
            warnings.AddRange(frozen.Resume());
            // A move to another node that did not complete may have announced their addresses there.
            if (options.BeforeEnd is not null)
                warnings.AddRange(NetworkRestorer.Announce(namespaces));
            frozenAt.Stop();
            if (notCommitted is not null)
                throw new CheckpointException($"checkpoint of {what} failed: {notCommitted}; {(members.Count > 1 ? "the processes run" : "the process runs")} on");
            warnings.Add($"the checkpoint was taken, but {keptRunning} before it ended {(members.Count > 1 ? "the processes: they run" : "the process: it runs")} on");
        }
        else if (!options.LeaveRunning)
        {
            Faults.Check(FaultPoint.BeforeEnd);
            frozen.Kill(() =>
            {
                trace.Mark("killed");
                options.Ending?.Invoke();
            });
            frozenAt.Stop();
            trace.Mark("kill");
            warnings.AddRange(connections.End());
        }
        long bytes = new DirectoryInfo(options.ImagesDirectory).EnumerateFiles().Sum(f => f.Length);
        return new CheckpointResult(root, [.. members.Select(m => m.Pid)], pages, bytes, frozen.Barrier, frozenAt.Elapsed, total.Elapsed, warnings)
        {
            PagesKept = kept,
            PagesSkipped = skipped,
            PagesCopiedBeforeTheFreeze = preCopied.PagesUsed,
            Parent = parent?.Name,
            Trackers = trackers,
            Storage = storageStats,
            Ended = !options.LeaveRunning && keptRunning is null,
            FrozenBeforeEnd = frozenBeforeEnd,
            FrozenAtUnixMs = frozenAtUnixMs,
        };
    }

    /// <summary>A sealed checkpoint made durable (by <paramref name="durable"/>, running) and put in place; null, or why it could not be.</summary>
    private static string? CommitSealed(CheckpointWriter writer, Task durable)
    {
        try
        {
            durable.GetAwaiter().GetResult();
            Faults.Check(FaultPoint.SealedCommit);
            writer.Commit();
            return null;
        }
        catch (Exception e) when (e is ImageStoreException or CheckpointException)
        {
            return e.Message;
        }
    }

    /// <summary>The connections ready for their processes to end (null), or why they cannot be.</summary>
    private static string? Park(TcpRepairs connections, string checkpoint)
    {
        try
        {
            connections.Park(checkpoint);
            return null;
        }
        catch (Exception e) when (e is KernelCallException or IOException)
        {
            return $"its TCP connections could not be made ready for it ({e.Message})";
        }
    }

    /// <summary>
    /// What the processes share, decided once every one is known, resource by resource: who makes
    /// each pipe, pseudo-terminal, socket pair and FIFO again, and each open file, shared memory object and deleted
    /// file several processes use (docs/architecture.md §3.4).
    /// </summary>
    private static List<string> ResolveSharing(IReadOnlyList<ProcessImage> processes, CheckpointOptions options)
    {
        PipeResolver.Resolve(processes);
        var warnings = PtyResolver.Resolve(processes);
        warnings.AddRange(SocketPairs.Resolve(processes, options.ReconnectTo));
        FifoKind.Resolve(processes);
        warnings.AddRange(Sharing.Resolve(processes));
        return warnings;
    }

    private static Manifest NewManifest(FrozenGroup frozen, string? group, bool hasForest, ParentCheckpoint? parent, IEnumerable<string> sources, bool storage,
        NamespacesImage? namespaces) => new()
    {
        Namespaces = namespaces,
        RequiredFeatures = { namespaces is null ? [] : namespaces.Links.Count > 0 ? [ImageFormat.NamespacesFeature, ImageFormat.NetworkLinksFeature] : [ImageFormat.NamespacesFeature] },
        FormatVersion = ImageFormat.FormatVersion,
        AmberVersion = ImageNames.AmberVersion,
        CreatedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
        KernelRelease = File.ReadAllText("/proc/sys/kernel/osrelease").Trim(),
        RootPid = frozen.Members.First().Pid,
        Pids = { frozen.Members.Select(m => m.Pid) },
        TreeRoots = { frozen.Trees.Select(t => t.RootPid) },
        Group = group ?? "",
        Forest = hasForest,
        Parent = parent?.Name ?? "",
        Sources = { sources },
        Storage = storage,
    };

    /// <summary>
    /// What storage capture leaves out: the coordinator's state, and the store the checkpoint is
    /// written to when it is below a storage directory. A checkpoint cannot be written into the very
    /// directory it captures.
    /// </summary>
    private static List<string> StorageExclusions(CheckpointOptions options)
    {
        string images = Path.TrimEndingDirectorySeparator(Path.GetFullPath(options.ImagesDirectory));
        string store = Path.GetDirectoryName(images)!;
        var excluded = options.StorageExcluded.Select(e => Path.TrimEndingDirectorySeparator(Path.GetFullPath(e))).ToList();
        if (excluded.Any(e => images == e || StoragePaths.IsBelow(images, e)))
            return excluded;
        foreach (string root in options.Storage)
        {
            if (store == root || StoragePaths.IsBelow(root, store))
                throw new CheckpointException($"the checkpoint {images} would be inside its own storage {root}: write it to another directory");
            if (StoragePaths.IsBelow(store, root))
                excluded.Add(store);
        }
        return excluded;
    }

    private static void Preflight(int pid)
    {
        if (pid <= 1)
            throw new CheckpointException($"refusing to checkpoint process {pid}");
        if (pid == Environment.ProcessId)
            throw new CheckpointException("refusing to checkpoint amber itself");
        if (!ProcFs.Exists(pid))
            throw new TargetGoneException(pid);
        var status = ProcFs.ReadStatus(pid);
        if (status.Tgid != pid)
            throw new CheckpointException($"{pid} is a thread of process {status.Tgid}; checkpoint the process");
        if (status.State is 'Z' or 'X')
            throw new CheckpointException($"process {pid} is a zombie");
    }

    /// <summary>What every live process of the tree is checked for, just before it is frozen.</summary>
    private static void CheckMember(int pid, IReadOnlyDictionary<string, string> notJoined)
    {
        var status = ProcFs.ReadStatus(pid);
        if (status.TracerPid != 0)
            throw new CheckpointException($"process {pid} is already traced by process {status.TracerPid}");
        ResourceChecks.Check(pid, notJoined);
    }

    /// <summary>What every process dump of one checkpoint shares.</summary>
    private sealed record DumpRun(
        CheckpointWriter Writer, PageCopyPool Buffers, SavedObjects Saved, ParentCheckpoint? Parent, CheckpointOptions Options,
        Dictionary<int, List<(ulong, ulong)>> WrittenBefore, ImagePids Ids, IReadOnlyDictionary<string, string> NotJoined, PhaseTrace Trace, CancellationToken Cancel);

    /// <summary>
    /// One process dumped: its image; what copied its pages, whose writes and runs need not wait with
    /// the process stopped (<see cref="MemoryDumper.Finish"/>); with tracking, its tracker from now on.
    /// </summary>
    private sealed record ProcessDump(ProcessImage Image, MemoryDumper Pages, TrackedProcess? Tracked);

    private static ProcessDump DumpProcess(FrozenProcess frozen, int parent, DumpRun run, PreCopiedPages? preCopied)
    {
        var (writer, buffers, saved, earlier, options, writtenBefore, ids, notJoined, trace, cancel) = run;
        int pid = frozen.Pid;
        int imagePid = ids.Of(pid); // what the image's files and the parent's images know it by
        // Re-checked under the freeze: the process may have changed just before it stopped.
        ResourceChecks.Check(pid, notJoined);

        using var memory = new RemoteMemory(pid);
        var stat = ProcFs.ReadStat(pid);
        var status = ProcFs.ReadStatus(pid);
        var image = NewImage(pid, imagePid, stat, status);
        image.Ppid = parent;
        image.Stopped = frozen.WasStopped;
        image.SharesFdTable = parent > 0 && ProcessFiles.ShareFdTable(pid, parent);
        var mapsBefore = ProcFs.ReadMaps(pid);
        ThreadStateDumper.Dump(frozen, memory, mapsBefore, image);
        trace.Mark("thread state");
        Faults.Check(FaultPoint.AfterThreadState);
        cancel.ThrowIfCancellationRequested();

        var vmFlags = VmaFlagsReader.Start(pid); // slow (smaps): meanwhile the files and pages are dumped
        FdTable.Dump(pid, image);
        foreach (var m in ProcFs.ReadMaps(pid))
            image.Mm.Vmas.Add(VmaClassifier.Classify(pid, m));

        using var pageMap = new PageMap(pid);
        var pageFile = writer.CreatePageFile(image.PageFile);
        trace.Mark("files and mappings");
        var dumper = new MemoryDumper(memory, pageMap, pageFile, buffers, cancel, earlier?.MemoryOf(imagePid), options.Compression);
        try
        {
            dumper.StartScan(image.Mm);
            // Written pages since the parent, where a tracker kept since then knows them (read and re-protected now).
            var previous = earlier is not null && options.Trackers.TryGetValue(pid, out var t) ? (Tracker: DirtyTracker.Adopt(pid, t.Uffd), t.Ranges) : default;
            WrittenPages? written = previous.Tracker is { } adopted
                ? new WrittenPages(previous.Ranges, writtenBefore.GetValueOrDefault(pid) ?? [],
                    [.. previous.Ranges.SelectMany(r => adopted.TakeWritten(r.Item1, r.Item2))])
                : null;
            trace.Mark("written pages");
            // Shared objects and deleted files first: they write to the page file directly, the private
            // memory's writes may then go on after the process is let go.
            ShmemDumper.Dump(pid, imagePid, image, pageFile, saved, earlier, cancel);
            DeletedFileDumper.Dump(pid, imagePid, image, pageFile, saved, earlier, cancel);
            trace.Mark("shared memory");
            dumper.Dump(image.Mm, written, preCopied);
            trace.Mark("pages");
            vmFlags.AddTo(image.Mm, pageMap);
            trace.Mark("mapping flags");
            var tracked = options.Track && options.LeaveRunning && DirtyTracker.Works ? ArmTracking(frozen, memory, image, previous) : null;
            trace.Mark("tracking");
            return new ProcessDump(image, dumper, tracked);
        }
        catch
        {
            dumper.Dispose();
            vmFlags.Abandon();
            throw;
        }
    }

    /// <summary>
    /// How many page buffers a checkpoint prepares: enough for every page the trackers saw written
    /// before the freeze (copied into them before it, <see cref="PreCopies"/>), and at least the few
    /// that copying under the freeze needs besides. Never more than an eighth of the memory available.
    /// </summary>
    private static int BuffersFor(Dictionary<int, List<(ulong Start, ulong End)>> writtenBefore)
    {
        long bytes = writtenBefore.Values.Sum(ranges => ranges.Sum(r => (long)(r.End - r.Start)));
        long wanted = LeastBuffers + (bytes + MemoryDumper.BufferSize - 1) / MemoryDumper.BufferSize;
        long most = Math.Max(LeastBuffers, MemInfo.AvailableBytes() / 8 / MemoryDumper.BufferSize);
        return (int)Math.Min(Math.Min(wanted, most), 256);
    }

    /// <summary>
    /// The page cache to make ahead for an incremental written frozen: what was written before the
    /// freeze, twice (the processes write on until it), and a MiB.
    /// </summary>
    private static long PrefaultBytes(Dictionary<int, List<(ulong Start, ulong End)>> writtenBefore) =>
        Math.Min(2 * writtenBefore.Values.Sum(ranges => ranges.Sum(r => (long)(r.End - r.Start))) + (1L << 20), 256L << 20);

    /// <summary>The page buffers a checkpoint keeps for copying under the freeze, whatever was copied before it.</summary>
    private const int LeastBuffers = 3;

    /// <summary>
    /// The pages each tracked process wrote since the last checkpoint, read (and protected again)
    /// while it still runs: protecting them is the slow part of the scan, and the scan under the
    /// freeze then has only what was written in between to protect. Both together are what was
    /// written since the checkpoint.
    /// </summary>
    private static Dictionary<int, List<(ulong, ulong)>> WrittenBeforeTheFreeze(
        IReadOnlyDictionary<int, (HeldFile Uffd, IReadOnlyList<(ulong Start, ulong End)> Ranges)> trackers)
    {
        var written = new Dictionary<int, List<(ulong, ulong)>>();
        foreach (var (pid, (uffd, ranges)) in trackers)
        {
            try
            {
                var tracker = DirtyTracker.Adopt(pid, uffd); // not disposed: the handle stays the coordinator's
                written[pid] = [.. ranges.SelectMany(r => tracker.TakeWritten(r.Start, r.End))];
            }
            catch (TargetGoneException)
            {
                // Exited since the last checkpoint (an nginx worker replaced by a reload): its tracker
                // goes with it, and whatever runs now is read in full.
            }
            catch (Exception e) when (e is KernelCallException or IOException)
            {
                // Gone, or going. What a scan that failed half-way protected again would be missed by
                // the scan under the freeze: all of it counts as written (read again) instead.
                written[pid] = [.. ranges];
            }
        }
        return written;
    }

    /// <summary>
    /// Tracks writes to the process's memory from now until the next checkpoint: the tracker kept
    /// since the last one, or a new one, registered on every range of private memory not yet tracked.
    /// </summary>
    private static TrackedProcess ArmTracking(
        FrozenProcess frozen, RemoteMemory memory, ProcessImage image, (DirtyTracker? Tracker, IReadOnlyList<(ulong Start, ulong End)>? Ranges) previous)
    {
        var tracker = previous.Tracker;
        if (tracker is null)
        {
            var leader = frozen.Leader;
            var injector = new SyscallInjector(leader.Tracee, VdsoSyscall.Find(ProcFs.ReadMaps(frozen.Pid), memory, frozen.Pid), int3Follows: false, leader.Registers);
            try
            {
                tracker = DirtyTracker.Create(frozen.Pid, new RemoteCalls(injector, memory, 0, 0));
            }
            finally
            {
                if (injector.DeferredSignal != 0)
                    leader.DeferredSignal = injector.DeferredSignal;
            }
        }
        // Writable private memory only: what is not writable cannot change (memory made writable later
        // is a new mapping, untracked, and read in full next time).
        var ranges = image.Mm.Vmas.Where(VmaClassifier.Trackable).Select(v => (v.Start, v.End)).ToList();
        var tracked = previous.Ranges ?? [];
        foreach (var (start, end) in ranges.Where(r => !tracked.Any(t => t.Start <= r.Start && r.End <= t.End)))
            tracker.Track(start, end);
        return new TrackedProcess(frozen.Pid, tracker, ranges);
    }

    private static ProcessImage NewImage(int pid, int imagePid, ParsedStat stat, ProcStatus status)
    {
        string exe = ProcFs.ReadExe(pid);
        if (exe.EndsWith(" (deleted)", StringComparison.Ordinal) || !FileStat.TryGet(ProcFs.InView(pid, exe), out var exeStat))
            throw new UnsupportedResourceException(pid, $"its executable {exe}", "a deleted file");
        string root = ProcFs.ReadRoot(pid);
        if (root != "/")
            throw new UnsupportedResourceException(pid, $"its root directory {root}", "a chroot");
        string cwd = ProcFs.ReadCwd(pid);
        ulong cwdDeleted = 0;
        if (cwd.EndsWith(" (deleted)", StringComparison.Ordinal) && FileStat.TryGet($"/proc/{pid}/cwd", out var cwdStat))
        {
            cwd = cwd[..^" (deleted)".Length];
            cwdDeleted = cwdStat.Inode;
        }
        var image = new ProcessImage
        {
            Pid = pid,
            Ppid = stat.ParentPid,
            Pgid = stat.ProcessGroup,
            Sid = stat.Session,
            Comm = status.Name,
            ExePath = exe,
            ExeIdentity = new FileIdentity { Device = exeStat.Device, Inode = exeStat.Inode, Size = exeStat.Size, MtimeNs = exeStat.MtimeNs },
            Cwd = cwd,
            CwdDeleted = cwdDeleted,
            Root = root,
            Umask = status.Umask,
            Personality = ProcFs.ReadPersonality(pid),
            PageFile = ImageNames.Pages(imagePid),
            Creds = ProcessCredentials.Dump(status),
            Cgroup = ProcFs.ReadCgroup(pid),
            Mm = new MmImage
            {
                StartCode = stat.StartCode, EndCode = stat.EndCode, StartData = stat.StartData, EndData = stat.EndData,
                StartBrk = stat.StartBrk, StartStack = stat.StartStack, ArgStart = stat.ArgStart, ArgEnd = stat.ArgEnd,
                EnvStart = stat.EnvStart, EnvEnd = stat.EnvEnd, Auxv = Google.Protobuf.ByteString.CopyFrom(ProcFs.ReadAuxv(pid)),
                PageSize = (ulong)Environment.SystemPageSize,
            },
        };
        return image;
    }
}
