using System.Diagnostics;
using Amber.Checkpoint.Dump;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Inject;
using Amber.Kernel.Memory;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;
using Amber.Kernel.Ptrace;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// Restore of one process: open and verify the image → validate it against this machine → wait for
/// the PID → create the process (husk + clone3 set_tid) → address space → mm fields → signal
/// handlers → fds → cwd, umask, session → thread state → queued signals → drop the trampoline →
/// registers → release. Nothing is created until the whole image has been checked; if anything fails
/// after that, the new process is killed, so a restore either runs or leaves nothing behind.
/// </summary>
public static class Restorer
{
    public static RestoreResult Restore(RestoreOptions options, CancellationToken cancel = default) =>
        TracerThread.Run("amber-restore", () => Run(options, cancel));

    private static RestoreResult Run(RestoreOptions options, CancellationToken cancel)
    {
        var clock = Stopwatch.StartNew();
        var trace = new PhaseTrace("restore");
        // Page data is checked run by run once it is in the new process, before that process runs
        // (PageVerifier); everything else, including the page file's header and size, is checked here.
        var reader = CheckpointReader.Open(options.ImagesDirectory, verifyPageFiles: false);
        trace.Mark("open and verify image");
        var manifest = reader.Manifest;
        if (manifest.Pids.Count != 1)
            throw new CheckpointException($"{options.ImagesDirectory} holds {manifest.Pids.Count} processes; this version restores one");
        int pid = manifest.RootPid;
        var image = reader.ReadMessage(ImageNames.Process(pid), ImageFileKind.Process, ProcessImage.Parser);
        if (image.Pid != pid)
            throw new CheckpointException($"{ImageNames.Process(pid)} describes process {image.Pid}");
        string pagePath = reader.GetFilePath(image.PageFile);
        ulong pageDataEnd;
        using (var pageFile = reader.OpenPageFile(image.PageFile))
            pageDataEnd = pageFile.DataLength + (ulong)ImageFormat.PageSize;
        var warnings = ImageValidator.Validate(image, pageDataEnd);

        trace.Mark("validate");
        WaitForPid.Free(pid, options.PidWait, cancel);
        cancel.ThrowIfCancellationRequested();
        // The husk dies at once; its clone is re-parented to us, so we can reap it if the restore fails
        // (and wait for it when not detached). Detached, it moves on to our own parent when we exit.
        Spawner.BecomeSubreaper();

        var imageRanges = image.Mm.Vmas.Select(v => (v.Start, v.End)).ToList();
        var (process, trampoline) = HuskProcess.Create(pid, imageRanges, options.InheritFds.Select(i => i.Source).ToList());
        trace.Mark("create process");
        var threads = new List<Tracee> { process };
        try
        {
            Build(process, threads, trampoline, image, pagePath, options, warnings, trace, cancel);
        }
        catch
        {
            Spawner.Kill(pid, Signals.SIGKILL);
            // Collect every thread's exit as its tracer, the leader last (KERNEL.md pitfall 8).
            foreach (var t in threads.AsEnumerable().Reverse())
            {
                t.MarkGone();
                try { while (!Tracee.WaitAny(t.Tid).IsGone) { } }
                catch (KernelCallException) { }
            }
            throw;
        }
        if (options.Detach)
            return new RestoreResult(pid, clock.Elapsed, warnings, null);
        var end = Spawner.Reap(pid);
        return new RestoreResult(pid, clock.Elapsed, warnings, end.Exited ? end.ExitCode : 128 + end.TermSignal);
    }

    private static void Build(Tracee process, List<Tracee> threads, ulong trampoline, ProcessImage image, string pagePath, RestoreOptions options, List<string> warnings, PhaseTrace trace, CancellationToken cancel)
    {
        int pid = image.Pid;
        using var memory = new RemoteMemory(pid);
        // Nothing may be delivered into our injections; the saved mask is put back at the end.
        process.SetSignalMask(ulong.MaxValue);
        process.SetOptions(PtraceOptions.TraceClone | PtraceOptions.ExitKill);
        Faults.Check(FaultPoint.RestoreAfterCreate);
        var injector = new SyscallInjector(process, trampoline, int3Follows: true);
        var calls = new RemoteCalls(injector, memory, trampoline + 4096, 4096);

        calls.CloseRange(3 + options.InheritFds.Count, uint.MaxValue);
        var mm = new MemoryRestorer(calls, image, trampoline);
        mm.RemoveHuskMappings();
        mm.MoveVdso();
        trace.Mark("clear husk, move vdso");
        cancel.ThrowIfCancellationRequested();
        mm.MapAndFill(pagePath);
        trace.Mark("map and fill memory");
        PageVerifier.Verify(pid, image.Mm.Pages, pagePath);
        trace.Mark("verify page checksums");
        cancel.ThrowIfCancellationRequested();

        int exe = calls.OpenAt(image.ExePath, RemoteCalls.OpenFlags.ReadOnly | RemoteCalls.OpenFlags.CloseOnExec);
        var m = image.Mm;
        calls.SetMmMap(new MmLayout(m.StartCode, m.EndCode, m.StartData, m.EndData, m.StartBrk, m.Brk, m.StartStack,
            m.ArgStart, m.ArgEnd, m.EnvStart, m.EnvEnd), m.Auxv.Span, exe);
        calls.Close(exe);
        calls.SetPersonality(image.Personality);

        var actions = image.Sigactions.ToDictionary(a => a.Signal);
        for (int sig = 1; sig <= Signals.Count; sig++)
        {
            if (sig is Signals.SIGKILL or Signals.SIGSTOP)
                continue;
            var d = actions.TryGetValue(sig, out var a) ? new SignalDisposition(a.Handler, a.Flags, a.Restorer, a.Mask) : default;
            calls.SetSignalAction(sig, d);
        }

        var files = new FileRestorer(calls, image, options.InheritFds);
        files.Restore();
        warnings.AddRange(files.Warnings);
        calls.ChangeDirectory(image.Cwd);
        calls.SetUmask(image.Umask);
        if (image.Sid == pid)
            calls.NewSession();
        else if (image.Pgid == pid)
            calls.NewProcessGroup();

        // Threads before credentials: clone3 with set_tid needs the privilege a non-root uid gives up.
        var restored = ThreadRestorer.CreateThreads(calls, image, trampoline);
        threads.AddRange(restored.Skip(1).Select(t => t.Tracee));
        foreach (var t in restored)
        {
            var threadCalls = calls.WithInjector(t.Injector);
            threadCalls.SetName(t.Image.Comm);
            ThreadRestorer.RestoreState(threadCalls, t.Image);
        }
        ThreadRestorer.QueueSignals(calls, pid, image);
        foreach (var limit in image.Rlimits)
        {
            try
            {
                calls.SetResourceLimit(limit.Resource, limit.Soft, limit.Hard);
            }
            catch (KernelCallException e) when (e.Errno == Errnos.EPERM)
            {
                warnings.Add($"resource limit {limit.Resource} could not be raised back to {limit.Soft}/{limit.Hard} (that needs CAP_SYS_RESOURCE)");
            }
        }
        if (image.NoNewPrivs)
            calls.SetNoNewPrivileges();
        // Last: after this the process may no longer be allowed what the restore needed.
        CredentialRestorer.Restore(calls, image, warnings);
        foreach (var timer in image.Itimers)
        {
            // A periodic ITIMER_REAL that fired while the process was stopped waits, disarmed, for its
            // SIGALRM to be dequeued before the kernel rearms it; a value of 0 here would disarm it for good.
            long value = timer.ValueUs == 0 ? timer.IntervalUs : timer.ValueUs;
            calls.SetIntervalTimer(timer.Which, timer.IntervalUs, value);
        }

        // The trampoline cannot unmap itself (the int3 after the syscall would fault): single-step a
        // syscall instruction of the restored vdso instead.
        ulong vdsoSyscall = VdsoSyscall.Find(ProcFs.ReadMaps(pid), memory, pid);
        new RemoteCalls(new SyscallInjector(process, vdsoSyscall, int3Follows: false, injector.OriginalRegisters), memory, 0, 0)
            .Munmap(trampoline, HuskProcess.TrampolineSize);

        foreach (var t in restored)
            ThreadRestorer.RestoreRegisters(t.Tracee, t.Image);
        Faults.Check(FaultPoint.RestoreBeforeRelease);
        // All threads go at once, the leader last.
        foreach (var t in restored.AsEnumerable().Reverse())
            t.Tracee.Detach();
        trace.Mark("files, signals, threads");
    }
}
