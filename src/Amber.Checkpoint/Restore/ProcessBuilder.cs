using Amber.Checkpoint.Dump;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Files;
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
    private const int RlimitCore = 4;
    private readonly List<Tracee> _created = [];
    private readonly List<(List<RestoredThread> Threads, bool Stopped)> _held = [];

    public void Build(Tracee process, ProcessImage image, bool isRoot)
    {
        int pid = image.Pid;
        var (injector, calls) = Attach(process, pid);
        using var memory = calls.Memory;
        Faults.Check(FaultPoint.RestoreAfterCreate);
        // A process that shares its parent's fd table finds it restored: it neither clears nor fills it.
        bool ownTable = !image.SharesFdTable;
        if (ownTable)
            KeepOnlyInheritedFds(calls, isRoot);
        using var pageFiles = new PageFiles(reader, pid);
        var inherits = isRoot ? options.InheritFds : [];
        int floor = FileRestorer.Floor(image, inherits.Count);
        var deletedFiles = CreateForOthers(calls, image, pageFiles, floor);
        string pagePath = reader.GetFilePath(image.PageFile);
        var memfds = ShmemRestorer.CreateMemfds(calls, image, tree, pageFiles.Of, floor);
        deletedFiles.CreateOwn();
        var mm = new MemoryRestorer(calls, image, trampoline, memfds, deletedFiles.PathOf, warnings);
        mm.RemoveHuskMappings();
        mm.MoveVdso();
        cancel.ThrowIfCancellationRequested();
        mm.MapAndFill((owner, where) => reader.GetFilePath(ImageNames.Pages(owner == 0 ? pid : owner), where), pageFiles.Of);
        trace.Mark($"memory of {pid}");
        ShmemRestorer.AddSeals(calls, image, memfds);
        PageVerifier.Verify(pid, [.. image.Mm.Pages, .. image.Mm.Vmas.SelectMany(mm.AnonymousShmemRuns)], pagePath);
        trace.Mark($"pages of {pid} checked");
        cancel.ThrowIfCancellationRequested();

        // A child forked without exec already has its exe; the kernel refuses (EBUSY) to replace an
        // exe that is still mapped, even by itself, so it is only set when it differs (-1: keep).
        bool sameExe = ProcFs.ReadExe(pid) == image.ExePath;
        int exe = sameExe ? -1 : calls.OpenAt(image.ExePath, OpenFlags.ReadOnly | OpenFlags.CloseOnExec);
        var m = image.Mm;
        calls.SetMmMap(new MmLayout(m.StartCode, m.EndCode, m.StartData, m.EndData, m.StartBrk, m.Brk, m.StartStack,
            m.ArgStart, m.ArgEnd, m.EnvStart, m.EnvEnd), m.Auxv.Span, exe);
        if (!sameExe)
            calls.Close(exe);
        calls.SetPersonality(image.Personality);
        RestoreSignalActions(calls, image, isRoot);

        var files = new FileRestorer(calls, image, inherits, memfds, tree, deletedFiles);
        if (ownTable)
            files.Restore();
        else
            foreach (int held in memfds.Values) // what Restore would have closed, from the shared table
                calls.Close(held);
        // A deleted working directory is entered while it still has a name (or through its slot).
        calls.ChangeDirectory(image.CwdDeleted != 0 ? deletedFiles.PathOf(image.CwdDeleted) : image.Cwd);
        deletedFiles.RemoveNames(warnings);
        warnings.AddRange(files.Warnings);
        calls.SetUmask(image.Umask);
        JoinSession(calls, image);

        BuildChildren(calls, image);
        mm.AdviseAfterChildren(); // madvise(DONTFORK), mseal... only now (MemoryRestorer.Advice.cs)
        if (ownTable)
        {
            if (tree.HasSlots)
                calls.CloseRange(tree.SlotBase, (uint)tree.SlotEnd - 1);
            // Only now: closing a slot that holds a file the process has POSIX locks on releases them all.
            RestoreLocks(calls, image);
        }

        // Threads before credentials: clone3 with set_tid needs the privilege a non-root uid gives up.
        var threads = ThreadRestorer.CreateThreads(calls, image, trampoline);
        _created.AddRange(threads.Skip(1).Select(t => t.Tracee));
        foreach (var t in threads)
        {
            var threadCalls = calls.WithInjector(t.Injector);
            threadCalls.SetName(t.Image.Comm);
            ThreadRestorer.RestoreState(threadCalls, t.Image);
        }
        ThreadRestorer.QueueSignals(calls, pid, image);
        // Per mm, so once the threads are there; the .NET runtime fails without its registration.
        foreach (int registration in RemoteCalls.Membarrier.Registrations.Where(r => (image.MembarrierRegistrations & r) != 0))
            calls.RegisterMembarrier(registration);
        foreach (var t in image.PosixTimers.OrderBy(t => t.Id))
        {
            // A periodic timer that fired while the process was stopped is waiting for its signal to be taken.
            long value = t.ValueNs == 0 && t.IntervalNs != 0 ? t.IntervalNs : t.ValueNs;
            calls.CreatePosixTimer(t.Id, t.Clock, t.Signal, t.Value, t.Notify, t.NotifyTid, t.IntervalNs, value);
        }
        RestoreLimits(calls, image);
        // After this the process may no longer be allowed what the restore needed: the leader last,
        // as the restore goes on through it.
        foreach (var t in threads.Skip(1).Append(threads[0]))
        {
            var threadCalls = calls.WithInjector(t.Injector);
            CredentialRestorer.Restore(threadCalls, image, t.Image, warnings);
            RestoreParentDeathSignal(threadCalls, image, t.Image, isRoot);
        }
        CredentialRestorer.RestoreDumpable(calls, image);
        RestoreIntervalTimers(calls, image);

        // The trampoline cannot unmap itself (the int3 after the syscall would fault): single-step a
        // syscall instruction of the restored vdso instead.
        ulong vdsoSyscall = VdsoSyscall.Find(ProcFs.ReadMaps(pid), memory, pid);
        var last = new RemoteCalls(new SyscallInjector(process, vdsoSyscall, int3Follows: false, injector.OriginalRegisters), memory, 0, 0);
        last.Munmap(trampoline, HuskProcess.TrampolineSize);
        // A filter could forbid what the restore itself does: it goes on after everything else.
        var leaderRegs = Registers.FromBytes(image.Threads[0].Regs.Span);
        foreach (var filter in image.SeccompFilters)
            last.InstallSeccompFilter(filter.Span, leaderRegs.Rsp);
        foreach (var t in threads)
            ThreadRestorer.RestoreRegisters(t.Tracee, t.Image);
        _held.Add((threads, image.Stopped));
        trace.Mark($"process {pid}");
    }

    /// <summary>
    /// The forest of a group restore: a process with no image of its own that creates what the trees
    /// share, then clones every tree root with its PID, so each root inherits those objects as a
    /// child does its parent's; it ends before anything runs and the roots become amber's children.
    /// Returns the roots, ready to be built.
    /// </summary>
    public List<Tracee> BuildForest(Tracee process, ProcessImage forest)
    {
        var (_, calls) = Attach(process, process.Pid);
        using var memory = calls.Memory;
        KeepOnlyInheritedFds(calls, isRoot: true);
        using (var pageFiles = new PageFiles(reader, 0))
            CreateForOthers(calls, forest, pageFiles, FileRestorer.Floor(forest, options.InheritFds.Count));
        var roots = new List<Tracee>();
        foreach (var root in tree.Roots)
        {
            int pid = calls.CloneWithId(root.Pid, thread: false);
            if (pid != root.Pid)
                throw new CheckpointException($"clone3 gave process {pid}, not {root.Pid}");
            var tracee = Tracee.Adopt(pid, pid);
            tracee.WaitForStop();
            roots.Add(tracee);
        }
        trace.Mark("forest");
        return roots;
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
    private (SyscallInjector Injector, RemoteCalls Calls) Attach(Tracee process, int pid)
    {
        _created.Add(process);
        // Nothing may be delivered into our injections; the saved masks are put back at the end.
        process.SetSignalMask(ulong.MaxValue);
        process.SetOptions(PtraceOptions.TraceFork | PtraceOptions.TraceClone | PtraceOptions.ExitKill);
        var injector = new SyscallInjector(process, trampoline, int3Follows: true);
        return (injector, new RemoteCalls(injector, new RemoteMemory(pid), trampoline + 4096, 4096));
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
        CreateSharedPipes(calls, image);
        foreach (var pair in image.SocketPairs)
        {
            var (first, second) = calls.SocketPair(pair.Type);
            calls.Dup3(first, tree.PairSlots[(pair.Id, false)], closeOnExec: true);
            calls.Dup3(second, tree.PairSlots[(pair.Id, true)], closeOnExec: true);
            calls.Close(first);
            calls.Close(second);
            // No process holds the second end: amber does, until it has filled the first end's queue.
            if (pair.SecondGone)
                tree.GoneEnds[pair.Id] = Kernel.Files.HeldFile.CopyOf(image.Pid, tree.PairSlots[(pair.Id, true)]);
        }
        ShmemRestorer.CreateInSlots(calls, image, tree, pageFiles.Of);
        var deletedFiles = new DeletedFileRestorer(calls, image, tree, pageFiles.Of, floor);
        deletedFiles.CreateInSlots();
        foreach (var shared in image.SharedFiles)
        {
            int created = FileRestorer.CreateDescription(calls, shared.Recipe, deletedFiles.PathOf, tree);
            calls.Dup3(created, tree.FileSlots[shared.Id], closeOnExec: true);
            calls.Close(created);
        }
        ShmemRestorer.CreateSysvSegments(image, pageFiles.Of);
        return deletedFiles;
    }

    /// <summary>The pipes this process creates for the processes below it that share them.</summary>
    private void CreateSharedPipes(RemoteCalls calls, ProcessImage image)
    {
        foreach (var pipe in image.SharedPipes)
        {
            var (read, write) = PipeMaker.Make(calls, image.Pid, pipe, tree.SlotEnd);
            foreach (var (end, writeEnd) in new[] { (read, false), (write, true) }.Where(e => e.Item1 >= 0))
            {
                calls.Dup3(end, tree.Slots[(pipe.Id, writeEnd)], closeOnExec: true);
                calls.Close(end);
            }
        }
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
        foreach (var pid in _created.Select(t => t.Pid).Distinct())
            Kernel.Processes.Spawner.Kill(pid, Signals.SIGKILL);
        foreach (var t in _created.AsEnumerable().Reverse())
        {
            if (!t.Attached)
                continue;
            t.MarkGone();
            try { while (!Tracee.WaitAny(t.Tid).IsGone) { } }
            catch (KernelCallException) { }
        }
    }

    private void BuildChildren(RemoteCalls parent, ProcessImage image)
    {
        var children = tree.ChildrenOf(image.Pid);
        var pids = tree.Images.Select(i => i.Pid).ToHashSet();
        // Groups and sessions whose leader is gone, each made by a placeholder child (Dump/Sessions.cs).
        var placeholders = new Dictionary<int, (Tracee Process, RemoteCalls Calls)>();
        foreach (var child in children)
        {
            var (session, group) = Sessions.PlaceholdersFor(child, image, pids);
            var creator = parent;
            if (session != 0)
                creator = (placeholders.TryGetValue(session, out var s) ? s : placeholders[session] = Placeholder(parent, session, newSession: true)).Calls;
            else if (group != 0 && !placeholders.ContainsKey(group))
                placeholders[group] = Placeholder(parent, group, newSession: false);
            int pid;
            try
            {
                pid = creator.CloneWithId(child.Pid, thread: false, sharedFiles: child.SharesFdTable, sibling: creator != parent);
            }
            catch (KernelCallException e) when (e.Errno == Errnos.EEXIST)
            {
                throw new CheckpointException($"PID {child.Pid} was taken just before the restore could claim it, by {WaitForPid.Holder(child.Pid)}");
            }
            if (pid != child.Pid)
                throw new CheckpointException($"clone3 gave process {pid}, not {child.Pid}");
            var tracee = Tracee.Adopt(pid, pid);
            tracee.WaitForStop();
            if (child.Zombie)
                MakeZombie(tracee, child);
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
        int pid = parent.CloneWithId(id, thread: false);
        if (pid != id)
            throw new CheckpointException($"clone3 gave process {pid}, not {id} (a placeholder for process group or session {id})");
        var tracee = Tracee.Adopt(pid, pid);
        tracee.WaitForStop();
        _created.Add(tracee);
        var calls = new RemoteCalls(new SyscallInjector(tracee, trampoline, int3Follows: true), new RemoteMemory(pid), trampoline + 4096, 4096);
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
        var saved = image.Sigactions.FirstOrDefault(a => a.Signal == Signals.SIGCHLD);
        parent.SetSignalAction(Signals.SIGCHLD, saved is null ? default : new SignalDisposition(saved.Handler, saved.Flags, saved.Restorer, saved.Mask));
    }

    /// <summary>A child that had exited unreaped: it exits again, the same way, and waits for its parent.</summary>
    private void MakeZombie(Tracee child, ProcessImage image)
    {
        _created.Add(child);
        using var memory = new RemoteMemory(image.Pid);
        var injector = new SyscallInjector(child, trampoline, int3Follows: true);
        var calls = new RemoteCalls(injector, memory, trampoline + 4096, 4096);
        calls.SetName(image.Comm);
        JoinSession(calls, image);
        int status = image.ExitStatus;
        var regs = injector.OriginalRegisters.Clone();
        if ((status & 0x7f) == 0)
        {
            regs.PrepareSyscall(trampoline, Registers.Syscalls.ExitGroup, [(ulong)((status >> 8) & 0xff)]);
        }
        else
        {
            int signal = status & 0x7f;
            if (signal is not (Signals.SIGKILL or Signals.SIGSTOP)) // these two have no action to set
                calls.SetSignalAction(signal, default);
            var (_, hard) = calls.GetResourceLimit(RlimitCore);
            calls.SetResourceLimit(RlimitCore, 0, hard); // die by the signal, without a core file
            regs.PrepareSyscall(trampoline, Registers.Syscalls.Tgkill, [(ulong)image.Pid, (ulong)image.Pid, (ulong)signal]);
            child.SetSignalMask(0);
        }
        child.SetRegisters(regs);
        child.Detach();
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (ProcFs.ReadStat(image.Pid).State != 'Z')
        {
            if (DateTime.UtcNow > deadline)
                throw new CheckpointException($"zombie {image.Pid} did not exit");
            Thread.Sleep(1);
        }
    }

    private static void RestoreLocks(RemoteCalls calls, ProcessImage image)
    {
        foreach (var l in image.Locks)
        {
            try
            {
                if (l.Kind == FileLock.Types.Kind.Flock)
                    calls.Flock(l.Fd, l.Write);
                else
                    calls.LockRange(l.Fd, l.Kind == FileLock.Types.Kind.Ofd, l.Write, l.Start, l.Length);
            }
            catch (KernelCallException e) when (e.Errno is Errnos.EAGAIN or Errnos.EACCES)
            {
                var fd = image.Fds.First(f => f.Fd == l.Fd);
                throw new CheckpointException($"process {image.Pid} held a {(l.Write ? "write" : "read")} lock on {fd.Path}, which another process holds now");
            }
        }
    }

    /// <summary>
    /// Sets every disposition that differs from what the new process already has: a child has its
    /// parent's (restored just before it was cloned), the root the husk's — default, except what
    /// exec kept ignored (SIG_IGN, no flags).
    /// </summary>
    private void RestoreSignalActions(RemoteCalls calls, ProcessImage image, bool isRoot)
    {
        static SignalDisposition Of(SignalAction a) => new(a.Handler, a.Flags, a.Restorer, a.Mask);
        var current = new Dictionary<int, SignalDisposition>();
        if (isRoot)
        {
            ulong ignored = ProcFs.ReadStatus(image.Pid).SigIgnored;
            for (int sig = 1; sig <= Signals.Count; sig++)
            {
                if ((ignored & Signals.Bit(sig)) != 0)
                    current[sig] = new SignalDisposition(SignalDisposition.Ignore, 0, 0, 0);
            }
        }
        else
        {
            foreach (var a in tree.Images.First(i => i.Pid == image.Ppid).Sigactions)
                current[a.Signal] = Of(a);
        }
        var wanted = image.Sigactions.ToDictionary(a => a.Signal, Of);
        for (int sig = 1; sig <= Signals.Count; sig++)
        {
            if (sig is Signals.SIGKILL or Signals.SIGSTOP)
                continue;
            var want = wanted.GetValueOrDefault(sig);
            if (want != current.GetValueOrDefault(sig))
                calls.SetSignalAction(sig, want);
        }
    }

    /// <summary>
    /// Session and process group, as far as they can be rebuilt: leaders start their own; a member
    /// joins its group if its leader was restored before it; otherwise it stays where it was born.
    /// </summary>
    private void JoinSession(RemoteCalls calls, ProcessImage image)
    {
        int pid = image.Pid;
        if (image.Sid == pid)
        {
            calls.NewSession();
            return;
        }
        if (image.Pgid == pid)
        {
            calls.NewProcessGroup();
            return;
        }
        var parent = tree.Images.FirstOrDefault(i => i.Pid == image.Ppid);
        if (parent is null || parent.Pgid == image.Pgid)
            return;
        try
        {
            calls.JoinProcessGroup(image.Pgid);
        }
        catch (KernelCallException e)
        {
            warnings.Add($"process {pid} could not rejoin process group {image.Pgid}: {e.Message}");
        }
    }

    /// <summary>
    /// After the credentials, whose change clears it. A tree root's parent is not restored (it is
    /// amber, which exits): the signal would kill it then, so a root does not get it back.
    /// </summary>
    private void RestoreParentDeathSignal(RemoteCalls calls, ProcessImage image, ThreadImage thread, bool isRoot)
    {
        if (thread.ParentDeathSignal == 0)
            return;
        if (isRoot)
            warnings.Add($"process {image.Pid}{(thread.Tid == image.Pid ? "" : $" thread {thread.Tid}")} asked for signal {thread.ParentDeathSignal} when its parent dies; its parent is not restored, so it is not set again");
        else
            calls.SetParentDeathSignal(thread.ParentDeathSignal);
    }

    private void RestoreLimits(RemoteCalls calls, ProcessImage image)
    {
        foreach (var limit in image.Rlimits)
        {
            try
            {
                calls.SetResourceLimit(limit.Resource, limit.Soft, limit.Hard);
            }
            catch (KernelCallException e) when (e.Errno == Errnos.EPERM)
            {
                warnings.Add($"process {image.Pid}: resource limit {limit.Resource} could not be raised back to {limit.Soft}/{limit.Hard} (that needs CAP_SYS_RESOURCE)");
            }
        }
        if (image.NoNewPrivs)
            calls.SetNoNewPrivileges();
        if (image.ChildSubreaper)
            calls.SetChildSubreaper();
    }

    private static void RestoreIntervalTimers(RemoteCalls calls, ProcessImage image)
    {
        foreach (var timer in image.Itimers)
        {
            // A periodic ITIMER_REAL that fired while the process was stopped waits, disarmed, for its
            // SIGALRM to be dequeued before the kernel rearms it; a value of 0 here would disarm it for good.
            long value = timer.ValueUs == 0 ? timer.IntervalUs : timer.ValueUs;
            calls.SetIntervalTimer(timer.Which, timer.IntervalUs, value);
        }
    }
}
