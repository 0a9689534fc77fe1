using Amber.Checkpoint.Resources;
using Amber.Checkpoint.Resources.Cred;
using Amber.Checkpoint.Resources.DeletedFiles;
using Amber.Checkpoint.Resources.Isolation;
using Amber.Checkpoint.Resources.Limits;
using Amber.Checkpoint.Resources.Locks;
using Amber.Checkpoint.Resources.Memory;
using Amber.Checkpoint.Resources.Pipes;
using Amber.Checkpoint.Resources.ProcessGroups;
using Amber.Checkpoint.Resources.Scheduling;
using Amber.Checkpoint.Resources.SharedMemory;
using Amber.Checkpoint.Resources.SignalHandling;
using Amber.Checkpoint.Resources.Sockets;
using Amber.Checkpoint.Resources.Terminals;
using Amber.Checkpoint.Resources.Threads;
using Amber.Checkpoint.Resources.Timers;
using Amber.Checkpoint.Resources.Zombies;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Inject;
using Amber.Kernel.Memory;
using Amber.Kernel.Proc;
using Amber.Kernel.Ptrace;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// Rebuilds processes from inside, through the trampoline, parents before children:
/// address space → mm fields → signal handlers → fds → cwd, umask, session → children (each cloned
/// from this process with clone3(set_tid), then built the same way; zombies made to exit with their
/// status) → threads → thread state → queued signals → limits, credentials, timers → drop the
/// trampoline → registers. Every process is then held stopped until <see cref="ReleaseAll"/>.
/// </summary>
public sealed class ProcessBuilder(
    CheckpointReader reader, RestoreTree tree, ulong trampoline, RestoreOptions options,
    List<string> warnings, PhaseTrace trace, CancellationToken cancel)
{
    private readonly List<Tracee> _created = [];
    private readonly List<(List<RestoredThread> Threads, bool Stopped)> _held = [];
    private readonly List<Built> _built = [];
    private bool _procfsMounted;

    /// <summary>A lazy restore's pager (<see cref="RestoreOptions.Lazy"/>): private memory is left to it.</summary>
    public LazyPager? Pager { get; init; }

    public void Build(Tracee process, ProcessImage image, bool isRoot)
    {
        int pid = image.Pid; // the image's: its files, and the calls made inside (process.Pid is amber's)
        var (injector, calls) = Attach(process);
        // Their procfs, by the first of them: the one process that is sure to be in their PID namespace then.
        if (isRoot && tree.Mounts is { } mounts && !_procfsMounted)
        {
            MountRestorer.MountProcs(calls, mounts);
            _procfsMounted = true;
        }
        Faults.Check(FaultPoint.RestoreAfterCreate);
        // A process that shares its parent's fd table finds it restored: it neither clears nor fills it.
        bool ownTable = !image.SharesFdTable;
        if (ownTable)
            KeepOnlyInheritedFds(calls, isRoot);
        using var pageFiles = new PageFiles(reader, pid);
        var inherits = isRoot ? options.InheritFds : [];
        int floor = FdTable.Floor(image, inherits.Count);
        var deletedFiles = CreateForOthers(calls, image, pageFiles, floor);
        string pagePath = reader.GetFilePath(image.PageFile);
        var memfds = ShmemRestorer.CreateMemfds(calls, image, tree, pageFiles.Of, floor);
        deletedFiles.CreateOwn();
        // One batch of calls for the whole build: each phase flushes it before the next.
        var batch = HuskProcess.Batch(calls, trampoline);
        PageFiles? lazyFiles = null;
        if (Pager is not null)
            Pager.Own(lazyFiles = new PageFiles(reader, pid));
        var mm = new MemoryRestorer(calls, batch, image, trampoline, memfds, deletedFiles.PathOf, warnings) { Pager = Pager, LazyPageFiles = lazyFiles };
        mm.RemoveHuskMappings();
        mm.MoveVdso();
        cancel.ThrowIfCancellationRequested();
        mm.MapAndFill((owner, where) => reader.GetFilePath(ImageNames.Pages(owner == 0 ? pid : owner), where), pageFiles.Of, pagePath);
        trace.Mark($"memory of {pid}"); // checked too
        ShmemRestorer.AddSeals(calls, image, memfds);
        cancel.ThrowIfCancellationRequested();

        mm.SetLayout();
        calls.SetPersonality(image.Personality);
        SignalActions.Restore(calls, image, tree, isRoot);

        var fds = new FdRestore(calls, batch, image, tree, memfds, deletedFiles, floor);
        if (ownTable)
            FdTable.Restore(fds, inherits);
        else
            foreach (int held in memfds.Values) // what Restore would have closed, from the shared table
                calls.Close(held);
        // A deleted working directory is entered while it still has a name (or through its slot).
        calls.ChangeDirectory(image.CwdDeleted != 0 ? deletedFiles.PathOf(image.CwdDeleted) : image.Cwd);
        deletedFiles.RemoveNames(warnings);
        warnings.AddRange(fds.Warnings);
        calls.SetUmask(image.Umask);
        Sessions.Join(calls, image, tree, warnings);
        PtyRestorer.TakeControl(calls, image, tree); // before any process of its session is made: they inherit it

        BuildChildren(calls, image);
        mm.AdviseAfterChildren(); // madvise(DONTFORK), mseal... only now (MemoryRestorer.Advice.cs)
        if (ownTable)
        {
            if (tree.HasSlots)
                calls.CloseRange(tree.SlotBase, (uint)tree.SlotEnd - 1);
            // Only now: closing a slot that holds a file the process has POSIX locks on releases them all.
            FileLocks.Restore(calls, image);
        }

        // Threads before credentials: clone3 with set_tid needs the privilege a non-root uid gives up.
        var threads = ThreadRestorer.CreateThreads(calls, image, trampoline, tree);
        _created.AddRange(threads.Skip(1).Select(t => t.Tracee));
        foreach (var t in threads)
        {
            var threadCalls = calls.WithInjector(t.Injector);
            threadCalls.SetName(t.Image.Comm);
            ThreadRestorer.RestoreState(threadCalls, t.Image);
        }
        _built.Add(new Built(process, image, injector, calls, threads, fds.Deferred, isRoot));
        trace.Mark($"process {pid}");
    }

    /// <summary>
    /// Ends the restore of every process built, once all are (children before parents, as they were
    /// built): the fds on files in /proc of processes made after theirs, pending signals, timers,
    /// limits, credentials, then the trampoline dropped, seccomp filters and registers put back. Until
    /// here every process keeps the privilege the restore needs, and nothing of theirs runs before
    /// <see cref="ReleaseAll"/>.
    /// </summary>
    public void FinishAll()
    {
        foreach (var built in _built)
            Finish(built);
        trace.Mark("finish");
    }

    private void Finish(Built built)
    {
        var (process, image, injector, calls, threads, deferred, isRoot) = built;
        FdTable.OpenDeferred(calls, deferred);
        PtyRestorer.SetForeground(calls, image, tree, warnings);
        PendingSignals.Restore(calls, image.Pid, image);
        // Per mm, so once the threads are there; the .NET runtime fails without its registration.
        foreach (int registration in RemoteCalls.Membarrier.Registrations.Where(r => (image.MembarrierRegistrations & r) != 0))
            calls.RegisterMembarrier(registration);
        ProcessTimers.RestorePosixTimers(calls, image);
        ProcessLimits.Restore(calls, image, warnings);
        // After this the process may no longer be allowed what the restore needed: the leader last,
        // as the restore goes on through it.
        foreach (var t in threads.Skip(1).Append(threads[0]))
        {
            var threadCalls = calls.WithInjector(t.Injector);
            ThreadSettings.RestoreScheduling(threadCalls, image, t.Image, warnings);
            ProcessCredentials.Restore(threadCalls, image, t.Image, warnings);
            ProcessCredentials.RestoreParentDeathSignal(threadCalls, image, t.Image, isRoot, warnings);
            ThreadSettings.RestoreSettings(threadCalls, t.Image);
        }
        ProcessCredentials.RestoreDumpable(calls, image);
        ProcessTimers.RestoreIntervalTimers(calls, image);

        // The trampoline cannot unmap itself (the int3 after the syscall would fault): single-step a
        // syscall instruction of the restored vdso instead.
        var memory = calls.Memory;
        ulong vdsoSyscall = VdsoSyscall.Find(ProcFs.ReadMaps(process.Pid), memory, process.Pid);
        var last = new RemoteCalls(new SyscallInjector(process, vdsoSyscall, int3Follows: false, injector.OriginalRegisters), memory, 0, 0);
        last.Munmap(trampoline, HuskProcess.TrampolineSize);
        // A filter could forbid what the restore itself does: it goes on after everything else.
        var leaderRegs = Registers.FromBytes(image.Threads[0].Regs.Span);
        foreach (var filter in image.SeccompFilters)
            last.InstallSeccompFilter(filter.Span, leaderRegs.Rsp);
        foreach (var t in threads)
            ThreadRestorer.RestoreRegisters(t.Tracee, t.Image);
        _held.Add((threads, image.Stopped));
        memory.Dispose();
    }

    /// <summary>A process built up to its threads, waiting for <see cref="FinishAll"/>.</summary>
    private sealed record Built(
        Tracee Process, ProcessImage Image, SyscallInjector Injector, RemoteCalls Calls,
        List<RestoredThread> Threads, List<FdImage> Deferred, bool IsRoot);

    /// <summary>
    /// The forest of a group restore: a process with no image of its own that creates what the trees
    /// share, then clones every tree root with its PID, so each root inherits those objects as a
    /// child does its parent's; it ends before anything runs and the roots become amber's children.
    /// Returns the roots, ready to be built.
    /// </summary>
    public List<Tracee> BuildForest(Tracee process, ProcessImage forest)
    {
        var (_, calls) = Attach(process);
        using var memory = calls.Memory;
        KeepOnlyInheritedFds(calls, isRoot: true);
        using (var pageFiles = new PageFiles(reader, 0))
            CreateForOthers(calls, forest, pageFiles, FdTable.Floor(forest, options.InheritFds.Count));
        // In a new PID namespace, its PID 1 first: the namespace is made with it.
        if (tree.NewPidNamespace)
            calls.NewPidNamespaceForChildren();
        var made = tree.Roots.OrderBy(r => tree.NewPidNamespace && r.Pid == 1 ? 0 : 1)
            .Select(root => (root.Pid, Tracee: Clone(calls, root.Pid)))
            .ToDictionary(r => r.Pid, r => r.Tracee);
        trace.Mark("forest");
        return [.. tree.Roots.Select(r => made[r.Pid])];
    }

    /// <summary>A child of <paramref name="creator"/>'s with id <paramref name="id"/> (the image's), noted in the tree by amber's id for it.</summary>
    private Tracee Clone(RemoteCalls creator, int id, string note = "", bool sharedFiles = false, bool sibling = false)
    {
        var tracee = HuskProcess.Clone(creator, id, tree.NewPidNamespace, note, sharedFiles, sibling);
        tree.Made(id, tracee.Pid);
        return tracee;
    }

    /// <summary>
    /// Ends the forest once every root is built: the roots, stopped and traced, pass to amber (a
    /// subreaper), as the trees' original roots had a parent outside the group.
    /// </summary>
    public void EndForest(Tracee forest)
    {
        Kernel.Processes.Spawner.Kill(forest.Pid, Signals.SIGKILL);
        forest.MarkGone();
        while (!Tracee.WaitAny(forest.Pid).IsGone)
        {
        }
    }

    /// <summary>Seizes control of a new process: every signal blocked, forks traced, and calls through the trampoline.</summary>
    private (SyscallInjector Injector, RemoteCalls Calls) Attach(Tracee process)
    {
        _created.Add(process);
        // Nothing may be delivered into our injections; the saved masks are put back at the end.
        process.SetSignalMask(ulong.MaxValue);
        process.SetOptions(PtraceOptions.TraceFork | PtraceOptions.TraceClone | PtraceOptions.ExitKill);
        var injector = new SyscallInjector(process, trampoline, int3Follows: true);
        return (injector, HuskProcess.Calls(injector, new RemoteMemory(process.Pid), trampoline));
    }

    /// <summary>
    /// A root starts with amber's stdio and the inherited fds; a child with its parent's fds, of which
    /// it keeps only the slots (objects on their way down the tree).
    /// </summary>
    private void KeepOnlyInheritedFds(RemoteCalls calls, bool isRoot)
    {
        int keepFrom = isRoot ? 3 + options.InheritFds.Count : 0;
        if (!tree.HasSlots)
        {
            calls.CloseRange(keepFrom, uint.MaxValue);
        }
        else
        {
            calls.CloseRange(keepFrom, (uint)tree.SlotBase - 1);
            calls.CloseRange(tree.SlotEnd, uint.MaxValue);
        }
    }

    /// <summary>
    /// What this process creates for itself and the processes below it that share it, each into its
    /// slot: pipes, socket pairs, shared memory objects, deleted files, open files; and the System V
    /// segments it is the first to need (created by amber, by id).
    /// </summary>
    private DeletedFileRestorer CreateForOthers(RemoteCalls calls, ProcessImage image, PageFiles pageFiles, int floor)
    {
        PtyRestorer.CreateInSlots(calls, image, tree, warnings); // first: a shared file may be one of their slaves
        PipeKind.CreateShared(calls, image, tree);
        SocketPairs.CreateShared(calls, image, tree);
        ShmemRestorer.CreateInSlots(calls, image, tree, pageFiles.Of);
        var deletedFiles = new DeletedFileRestorer(calls, image, tree, pageFiles.Of, floor);
        deletedFiles.CreateInSlots();
        foreach (var shared in image.SharedFiles)
        {
            int created = Sharing.CreateFile(calls, shared.Recipe, deletedFiles, tree);
            calls.Dup3(created, tree.FileSlots[shared.Id], closeOnExec: true);
            calls.Close(created);
        }
        ShmemRestorer.CreateSysvSegments(image, pageFiles.Of);
        return deletedFiles;
    }

    /// <summary>Lets every process run, children before parents, each process's leader last.</summary>
    public void ReleaseAll()
    {
        foreach (var (threads, stopped) in _held.AsEnumerable().Reverse())
        {
            foreach (var t in threads.AsEnumerable().Reverse())
                t.Tracee.Detach(stopped && t == threads[0] ? Signals.SIGSTOP : 0);
        }
    }

    /// <summary>Ends everything created so far, and collects it as its tracer. Never throws.</summary>
    public void KillAll()
    {
        foreach (var built in _built)
            built.Calls.Memory.Dispose();
        foreach (var pid in _created.Select(t => t.Pid).Distinct())
            Kernel.Processes.Spawner.Kill(pid, Signals.SIGKILL);
        // As they end: a new PID namespace's PID 1 does not finish ending before every other process
        // in it is collected.
        var attached = _created.Where(t => t.Attached).ToList();
        attached.ForEach(t => t.MarkGone());
        Tracee.CollectEnded(attached.Select(t => t.Tid), TimeSpan.FromSeconds(30));
        // A killed process whose parent was killed too comes to us (the restore is a subreaper) as a
        // zombie: reaped here, so that a failed restore leaves no PID taken behind it.
        long until = Environment.TickCount64 + 2000;
        foreach (var pid in _created.Select(t => t.Pid).Distinct())
        {
            while (Kernel.Proc.ProcFs.Exists(pid) && !Kernel.Processes.Spawner.TryReap(pid, out _) && Environment.TickCount64 < until)
                Thread.Sleep(1);
        }
    }

    private void BuildChildren(RemoteCalls parent, ProcessImage image)
    {
        var children = tree.ChildrenOf(image.Pid);
        var pids = tree.Images.Select(i => i.Pid).ToHashSet();
        // Groups and sessions whose leader is gone, each made by a placeholder child (Resources/ProcessGroups/Sessions.cs).
        var placeholders = new Dictionary<int, (Tracee Process, RemoteCalls Calls)>();
        foreach (var child in children)
        {
            var (session, group) = Sessions.PlaceholdersFor(child, image, pids);
            var creator = parent;
            if (session != 0)
                creator = (placeholders.TryGetValue(session, out var s) ? s : placeholders[session] = Placeholder(parent, session, newSession: true)).Calls;
            else if (group != 0 && !placeholders.ContainsKey(group))
                placeholders[group] = Placeholder(parent, group, newSession: false);
            var tracee = Clone(creator, child.Pid, sharedFiles: child.SharesFdTable, sibling: creator != parent);
            if (child.Zombie)
            {
                _created.Add(tracee);
                Zombies.Restore(tracee, child, trampoline, tree, warnings);
            }
            else
                Build(tracee, child, isRoot: false);
        }
        EndPlaceholders(parent, image, placeholders.Values.Select(p => p.Process));
        // A zombie's death just told the parent again (SIGCHLD); what it had pending comes back with its image.
        if (children.Any(c => c.Zombie))
            parent.DiscardPendingSignal(Signals.SIGCHLD);
    }

    /// <summary>
    /// A child that holds a group (or a session) id whose leader is gone: it makes the group, or the
    /// session, which members then join (or are born into, cloned from it as its parent's children).
    /// </summary>
    private (Tracee, RemoteCalls) Placeholder(RemoteCalls parent, int id, bool newSession)
    {
        var tracee = Clone(parent, id, $" (a placeholder for process group or session {id})");
        _created.Add(tracee);
        var calls = HuskProcess.Calls(new SyscallInjector(tracee, trampoline, int3Follows: true), new RemoteMemory(tracee.Pid), trampoline);
        if (newSession)
            calls.NewSession();
        else
            calls.NewProcessGroup();
        return (tracee, calls);
    }

    /// <summary>
    /// Placeholders end once every member is in: with the parent ignoring SIGCHLD for the moment, the
    /// kernel reaps them at once, so the parent never sees a child it did not have.
    /// </summary>
    private void EndPlaceholders(RemoteCalls parent, ProcessImage image, IEnumerable<Tracee> placeholders)
    {
        var ending = placeholders.ToList();
        if (ending.Count == 0)
            return;
        parent.SetSignalAction(Signals.SIGCHLD, new SignalDisposition(SignalDisposition.Ignore, 0, 0, 0));
        foreach (var p in ending)
        {
            Kernel.Processes.Spawner.Kill(p.Pid, Signals.SIGKILL);
            p.MarkGone();
            while (!Tracee.WaitAny(p.Pid).IsGone)
            {
            }
            var deadline = DateTime.UtcNow.AddSeconds(5);
            while (ProcFs.Exists(p.Pid))
            {
                if (DateTime.UtcNow > deadline)
                    throw new CheckpointException($"the placeholder for process group or session {p.Pid} was not reaped");
                Thread.Sleep(1);
            }
        }
        parent.SetSignalAction(Signals.SIGCHLD, SignalActions.Saved(image, Signals.SIGCHLD));
    }

}
