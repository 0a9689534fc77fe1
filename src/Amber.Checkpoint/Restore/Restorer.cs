using System.Diagnostics;
using Amber.Checkpoint.Resources.AnonFds;
using Amber.Checkpoint.Resources.Isolation;
using Amber.Checkpoint.Resources.Memory;
using Amber.Checkpoint.Resources.SharedMemory;
using Amber.Checkpoint.Resources.Sockets;
using Amber.Checkpoint.Resources.SystemV;
using Amber.Checkpoint.Storage;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel.Processes;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// Restore of a process tree: open the image → validate every process against this machine → wait
/// for the PIDs → create the root (husk + clone3 set_tid) → build it, cloning each child from its
/// restored parent (<see cref="ProcessBuilder"/>) → release every process together. Nothing is
/// created until the whole image has been checked; if anything fails after that, every process
/// created is killed, so a restore either runs completely or leaves nothing behind.
/// </summary>
public static class Restorer
{
    /// <summary>
    /// Brings back every process of the checkpoint in <see cref="RestoreOptions.ImagesDirectory"/> with
    /// its PID, threads, memory, files and signal state, where it stopped. Needs root, or
    /// CAP_SYS_PTRACE and CAP_CHECKPOINT_RESTORE, and the kernel build that wrote the checkpoint.
    /// Either every process comes back or none does. Not detached, the call returns when the root ends.
    /// </summary>
    /// <param name="options">Which checkpoint, and whether to wait for the restored tree (<see cref="RestoreOptions.Detach"/>).</param>
    /// <param name="cancel">Stops the restore before the processes are released: none is left behind (storage already rolled back stays so).</param>
    /// <returns>The processes restored; not detached, the root's exit code too.</returns>
    /// <exception cref="CheckpointException">It cannot be restored here (a PID still taken, a file changed, a credential not held...); the message says why, in one line.</exception>
    /// <exception cref="Image.ImageFormatException">The checkpoint is damaged or of another format.</exception>
    public static RestoreResult Restore(RestoreOptions options, CancellationToken cancel = default) =>
        TracerThread.Run("amber-restore", () => Run(options, cancel));

    /// <summary>
    /// What a restore checks before it makes anything, and every page checksum besides, without
    /// making anything (amber restore --check): whether this checkpoint can be restored on this
    /// machine now. Returns the warnings a restore would give and the PIDs that are taken now (the
    /// checkpointed processes themselves, typically, still running).
    /// </summary>
    public static (IReadOnlyList<string> Warnings, IReadOnlyList<int> Processes, IReadOnlyList<int> PidsTaken) Check(RestoreOptions options)
    {
        var reader = CheckpointReader.Open(options.ImagesDirectory, verifyPageFiles: true, trust: options.Trust, key: options.Key);
        reader.ThrowIfNoKey();
        using var trace = new PhaseTrace("restore --check");
        var (tree, warnings, _) = Validate(reader, options, trace);
        var taken = tree.IdsToClaim.Where(Kernel.Proc.ProcFs.Exists).Distinct().ToList();
        return (warnings, [.. tree.Images.Select(i => i.Pid)], taken);
    }

    /// <summary>Everything checked before anything is made: the tree, who it is restored for, the storage, each process against this machine.</summary>
    private static (RestoreTree Tree, List<string> Warnings, StorageImage? Storage) Validate(CheckpointReader reader, RestoreOptions options, PhaseTrace trace)
    {
        var tree = RestoreTree.Load(reader, options.InheritFds.Count);
        if (tree.Images.Select(i => options.Admit?.Invoke(i)).FirstOrDefault(why => why is not null) is { } refused)
            throw new CheckpointException(refused);
        var warnings = new List<string>();
        var pageDataEnd = new Dictionary<(int, PageFileRef), ulong>();
        ulong PageDataEnd(int pid, PageFileRef where)
        {
            if (!pageDataEnd.TryGetValue((pid, where), out ulong end))
            {
                using var pageFile = reader.OpenPageFile(ImageNames.Pages(pid), where);
                pageDataEnd[(pid, where)] = end = pageFile.DataLength + (ulong)ImageFormat.PageSize;
            }
            return end;
        }
        var storage = reader.Manifest.Storage ? reader.ReadMessage(ImageNames.Storage, ImageFileKind.Metadata, StorageImage.Parser) : null;
        if (storage is not null)
            StorageRollback.Validate(storage);
        var storageRoots = storage?.Roots.Select(r => r.Path).ToList() ?? [];
        foreach (var image in tree.Images.Where(i => !i.Zombie))
            warnings.AddRange(ImageValidator.Validate(image, PageDataEnd, tree, path => StoragePaths.Covers(storageRoots, path) || MountRestorer.Covers(tree.Mounts, path)));
        if (reader.Manifest.Namespaces is { } namespaces && NetworkRestorer.Problem(namespaces) is { } network)
            throw new ImageFormatException($"{reader.Directory}: {network}");
        TcpConnections.CheckAddresses(tree.Images, reader.Manifest.Namespaces);
        warnings.AddRange(TcpConnections.AcceptQueueWarnings(tree.Images));
        trace.Mark("validate");
        return (tree, warnings, storage);
    }

    /// <summary>
    /// For a progress display: the bytes of the memory's pages, most of what is read; 0 when some are
    /// compressed (not known before). Counted in place: a chain's end holds ~180 000 runs for 2 GiB,
    /// and a list of them took ~25 ms in fresh memory.
    /// </summary>
    private static long PagesToRead(RestoreTree tree)
    {
        long bytes = 0;
        foreach (var image in tree.Images)
        {
            if (image.Zombie)
                continue;
            foreach (var run in image.Mm.Pages)
            {
                if (run.Codec != Codec.None)
                    return 0;
                bytes += (long)run.Count * ImageFormat.PageSize;
            }
        }
        return bytes;
    }

    /// <summary>
    /// The restored processes and every process they made since (a fork shares the missing pages):
    /// stopped first, so that none forks again meanwhile, then killed.
    /// </summary>
    private static void KillWithDescendants(List<int> roots)
    {
        var seen = new HashSet<int>();
        var next = new Queue<int>(roots);
        while (next.TryDequeue(out int pid))
        {
            if (!seen.Add(pid))
                continue;
            Spawner.Kill(pid, Kernel.Signals.SIGSTOP);
            foreach (int child in Kernel.Proc.ProcFs.ListChildren(pid))
                next.Enqueue(child);
        }
        foreach (int pid in seen)
            Spawner.Kill(pid, Kernel.Signals.SIGKILL);
    }

    private static RestoreResult Run(RestoreOptions options, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        using var trace = new PhaseTrace("restore");
        // Page data is checked run by run once it is in the new process, before that process runs
        // (PageVerifier); everything else, including the page files' headers and sizes, is checked here.
        var reader = CheckpointReader.Open(options.ImagesDirectory, verifyPageFiles: false, trust: options.Trust, key: options.Key, messagesCheckedOnRead: true);
        reader.ThrowIfNoKey();
        trace.Mark("open and verify image");
        var (tree, warnings, storage) = Validate(reader, options, trace);
        PageProgress.Expected = options.Lazy ? 0 : PagesToRead(tree);
        warnings.AddRange(NetworkLock.RemoveStale()); // an amber that died may have left one
        foreach (int id in tree.IdsToClaim)
            WaitForPid.Free(id, options.PidWait, options.PidWaitForOthers, cancel);
        cancel.ThrowIfCancellationRequested();
        trace.Mark("pids free");
        // The saved processes are gone (their PIDs are free): their files go back to that moment.
        var rollback = storage is null ? null : StorageRollback.Rollback(reader, storage, cancel);
        trace.Mark("storage rollback");
        // The husk dies at once; its clone is re-parented to us, so we can reap it if the restore fails
        // (and wait for it when not detached). Detached, it moves on to our own parent when we exit.
        Spawner.BecomeSubreaper();

        // One tree: its root is the process the husk makes. Several (a group): the husk makes the
        // forest, which creates what they share and clones every root, then ends.
        bool forest = tree.Roots.Count > 1 || tree.Forest is not null;
        tree.TcpRepairs.Abort = options.TcpClose;
        // Namespaces of their own are made on this thread, which makes every process (and runs the
        // network lock's nft: in their network namespace, where their connections are).
        // Their connections' lock first, in their network namespace before its interfaces are up.
        RestoreLock? taken = null;
        NetworkRestorer.Made namespaces;
        try
        {
            namespaces = NamespaceRestorer.Make(reader.Manifest.Namespaces, () => taken = RestoreLock.Take(TcpConnections.Of(tree.Images)));
        }
        catch
        {
            taken?.Dispose();
            throw;
        }
        // Disposed in reverse: the interfaces, then the lock (as the failure path below does).
        using var networkLock = taken!;
        using var network = namespaces;
        trace.Mark("namespaces");
        var (first, trampoline) = HuskProcess.Create(forest ? 0 : tree.Root.Pid, tree.AllRanges, options.InheritFds.Select(i => i.Source).ToList(), options.Cgroup,
            newPidNamespace: tree.NewPidNamespace && !forest, // the forest makes it, before the roots
            inHusk: tree.Mounts is { } mounts ? (husk, huskPid) => MountRestorer.Make(husk, huskPid, mounts) : null);
        if (!forest)
            tree.Made(tree.Root.Pid, first.Pid);
        trace.Mark("create process");
        var pager = options.Lazy ? new LazyPager() : null;
        var builder = new ProcessBuilder(reader, tree, trampoline, options, warnings, trace, cancel) { Pager = pager };
        // amber's ids for them: in a new PID namespace they have others there (the image's).
        List<int> processes = [];
        try
        {
            if (!forest)
            {
                builder.Build(first, tree.Root, isRoot: true);
            }
            else
            {
                var made = builder.BuildForest(first, tree.Forest ?? new ProcessImage { Mm = new MmImage() });
                for (int i = 0; i < made.Count; i++)
                    builder.Build(made[i], tree.Roots[i], isRoot: true);
                builder.EndForest(first);
            }
            builder.FinishAll();
            pager?.Seal();
            processes = [.. tree.Images.Select(i => tree.HostId(i.Pid))];
            ShmemRestorer.AddSharedSeals(tree);
            SocketQueueRestorer.Restore(tree, warnings);
            SysvIpcRestorer.Restore(tree.Root);
            tree.ReleaseTerminals(); // each process holds its own ends by now
            trace.Mark("socket queues");
            // The restore itself made events (files made again and unlinked in watched places); the
            // checkpoint took none (it refuses unread events): nothing may wait for the program now.
            foreach (var image in tree.Images.Where(i => !i.Zombie))
            {
                foreach (var fd in image.Fds.Where(f => f.Kind == FdKind.FdInotify))
                    Kernel.Files.ProcessFiles.Drain(tree.HostId(image.Pid), fd.Fd);
            }
            // Every end of every connection is there: made again, they may talk again.
            tree.TcpRepairs.Rebuild();
            if (tree.TcpRepairs.Resume() is [var problem, ..])
                throw new CheckpointException(problem);
            trace.Mark("connections");
            // Every queue is full again: what the epoll sets' edge-triggered watches had reported goes off their lists.
            EpollKind.SettleReadiness(tree, warnings);
            // Their addresses may have been elsewhere a moment ago (another node's): the network learns
            // where they are now; until the release their peers' packets meet the lock, never a reset.
            warnings.AddRange(NetworkRestorer.Announce(reader.Manifest.Namespaces));
            trace.Mark("addresses announced");
            // A group's checkpoint restored by hand (not as the group) stays out of the group's cgroup, as before.
            if (options.Cgroup is null && reader.Manifest.Group.Length == 0)
                ProcessCgroups.Restore(tree, warnings);
            Faults.Check(FaultPoint.RestoreBeforeRelease);
            options.BeforeRelease?.Invoke();
            if (pager?.Failure is { } broken)
                throw new CheckpointException(broken);
            // The last moment to give up: from here every process runs (released one by one, none of
            // them may be ended halfway; a tracer killed now would leave some running, the rest dead).
            cancel.ThrowIfCancellationRequested();
            builder.ReleaseAll();
            if (pager is not null)
            {
                pager.Released();
                // From now on a page the pager cannot place would leave a process with memory not its own: they all end.
                pager.Failed = _ => KillWithDescendants(processes);
                if (pager.Failure is not null)
                    pager.Failed(pager.Failure);
            }
            trace.Mark("release");
            Faults.Check(FaultPoint.RestoreBeforeUnlock);
            warnings.AddRange(networkLock.Lift());
            network.Keep();
            trace.Mark("network unlock");
        }
        catch
        {
            tree.TcpRepairs.Dispose(); // closed in repair mode: no peer is sent anything
            tree.ReleaseTerminals();
            builder.KillAll();
            pager?.Dispose();
            // Their interfaces go before their lock: announced here, their address draws their peers'
            // packets, and one let in between would meet no socket and be answered with a reset.
            network.Dispose();
            Faults.Check(FaultPoint.RestoreUndo);
            networkLock.Dispose();
            throw;
        }
        int root = tree.HostId(tree.Root.Pid);
        List<int> roots = [.. tree.Roots.Select(r => tree.HostId(r.Pid))];
        if (options.Detach)
            return new RestoreResult(root, roots, processes, clock.Elapsed, warnings, null) { Storage = rollback, Lazy = pager };
        var end = Spawner.Reap(root);
        return new RestoreResult(root, roots, processes, clock.Elapsed, warnings, end.Exited ? end.ExitCode : 128 + end.TermSignal) { Storage = rollback, Lazy = pager };
    }
}
