using Amber.Kernel.Inject;
using Amber.Kernel.Memory;
using Amber.Kernel.Proc;
using Amber.Kernel.Processes;
using Amber.Kernel.Ptrace;

namespace Amber.Kernel.Tests;

/// <summary>
/// The kernel facade on a real process: the husk is spawned, seized, made to run syscalls, and let go.
/// Needs ptrace over a child (root, or a normal user with Yama ptrace_scope ≤ 1). Synchronous on
/// purpose: all ptrace work happens on one dedicated thread (see <see cref="PtraceThread"/>).
/// </summary>
public sealed class HuskTracingTests
{
    private static readonly ulong PageSize = (ulong)Environment.SystemPageSize;

    // -ERESTARTNOHAND: what pause(2) leaves in rax when a ptrace stop interrupts it.
    private static readonly ulong RestartNoHand = unchecked((ulong)-Errnos.ERESTARTNOHAND);

    [Fact]
    public void SpawnedHuskRunsAndPauses()
    {
        using var husk = new HuskChild();
        try
        {
            husk.WaitUntilPaused();
            Assert.True(File.Exists($"/proc/{husk.Pid}/exe"));
            Assert.Equal(Husk.Path, ProcFs.ReadExe(husk.Pid));

            var status = ProcFs.ReadStatus(husk.Pid);
            Assert.Equal('S', status.State);
            Assert.Equal(husk.Pid, status.Tgid);
            Assert.Equal(Environment.ProcessId, status.ParentPid);
            Assert.Equal(0, status.TracerPid);
            Assert.Equal(1, status.Threads);
            Assert.Equal(0UL, status.SigBlocked); // Spawner starts children with an empty mask

            var stat = ProcFs.ReadStat(husk.Pid);
            Assert.Equal('S', stat.State);
            Assert.Equal(Husk.LoadAddress, stat.StartCode);
            Assert.Equal(Environment.ProcessId, stat.ParentPid);

            // One PT_LOAD at the load address, from the husk file; no heap was ever asked for.
            var maps = ProcFs.ReadMaps(husk.Pid);
            var code = Assert.Single(maps, m => m.Start == Husk.LoadAddress);
            Assert.True(code.Read && code.Execute && !code.Write, code.ToString());
            Assert.Equal(Husk.Path, code.Path);
            Assert.True(code.IsFileBacked);
            Assert.Equal(0UL, code.Offset);
            Assert.Contains(maps, m => m.Path == "[stack]" && !m.Execute); // PT_GNU_STACK RW
            Assert.DoesNotContain(maps, m => m.Path == "[heap]");

            Assert.Equal([husk.Pid], ProcFs.ListThreads(husk.Pid));
            Assert.Empty(ProcFs.ListChildren(husk.Pid));
        }
        finally
        {
            husk.KillAndReap();
        }
        AssertKilledBySigkill(husk);
    }

    [Fact]
    public void SeizeInjectAndLetGo()
    {
        using var husk = new HuskChild();
        try
        {
            husk.WaitUntilPaused();
            PtraceThread.Run(() => SeizeInjectDetach(husk.Pid));

            // Let go, the husk goes back to sleep in pause(2), untraced.
            husk.WaitUntilPaused();
            var status = ProcFs.ReadStatus(husk.Pid);
            Assert.Equal('S', status.State);
            Assert.Equal(0, status.TracerPid);
            Assert.DoesNotContain(ProcFs.ReadMaps(husk.Pid), m => m.Path.Length == 0 && m.Write);
        }
        finally
        {
            husk.KillAndReap();
        }
        AssertKilledBySigkill(husk);
    }

    private static void SeizeInjectDetach(int pid)
    {
        using var tracee = Tracee.Seize(pid, pid, PtraceOptions.None);
        Assert.True(tracee.Attached);
        Assert.Equal(pid, tracee.Pid);
        Assert.Equal(pid, tracee.Tid);

        var stop = tracee.WaitForStop();
        Assert.True(stop.IsEventStop, stop.ToString());
        Assert.Equal(pid, stop.Tid);
        Assert.Equal(Signals.SIGTRAP, stop.StopSignal);
        Assert.Equal('t', ProcFs.ReadStatus(pid).State); // tracing stop
        // TracerPid is the tracing *thread*: this one, one of our threads, not our pid.
        Assert.Contains(ProcFs.ReadStatus(pid).TracerPid, ProcFs.ListThreads(Environment.ProcessId));

        // Interrupted in pause(2): orig_rax is the syscall, rax the restart code, rip after `syscall`.
        var regs = tracee.GetRegisters();
        Assert.Equal(34UL, regs.OrigRax);
        Assert.Equal(RestartNoHand, regs.Rax);
        Assert.Equal(Husk.SyscallAddress + 2, regs.Rip);
        Assert.Equal(0UL, regs.FsBase); // no libc, no TLS
        Assert.Equal(0UL, tracee.GetSignalMask());
        Assert.Null(tracee.GetRseqConfiguration()); // no libc, no rseq
        Assert.Empty(tracee.PeekPendingSignals(shared: false));
        Assert.Empty(tracee.PeekPendingSignals(shared: true));

        var injector = new SyscallInjector(tracee, Husk.SyscallAddress, int3Follows: false);
        Assert.Same(tracee, injector.Thread);
        using var memory = new RemoteMemory(pid);
        var calls = new RemoteCalls(injector, memory, 0, 0);

        Assert.Equal(pid, calls.GetPid());
        Assert.Equal(pid, calls.GetPid()); // twice: the injector resets its registers each time

        // A fresh private anonymous page: mapped but not present until it is written.
        ulong page = calls.Mmap(0, PageSize, Mman.ProtRead | Mman.ProtWrite, Mman.MapPrivate | Mman.MapAnonymous);
        Assert.NotEqual(0UL, page);
        Assert.Equal(0UL, page % PageSize);
        var vma = Assert.Single(ProcFs.ReadMaps(pid), m => m.Start <= page && page < m.End);
        Assert.True(vma.Read && vma.Write && !vma.Execute && !vma.Shared, vma.ToString());
        Assert.Equal("", vma.Path);

        using (var pagemap = new PageMap(pid))
        {
            Span<ulong> entry = stackalloc ulong[1];
            pagemap.Read(page, entry);
            Assert.Equal(0UL, entry[0] & PageMap.Present);

            var data = new byte[PageSize];
            for (int i = 0; i < data.Length; i++)
                data[i] = (byte)(i * 31 + 7);
            memory.Write(page, data);

            pagemap.Read(page, entry);
            Assert.NotEqual(0UL, entry[0] & PageMap.Present);
            Assert.Equal(0UL, entry[0] & PageMap.Swapped);
            Assert.Equal(0UL, entry[0] & PageMap.FileOrShared);

            var viaMem = new byte[PageSize];
            memory.Read(page, viaMem);
            Assert.Equal(data, viaMem);
            var viaReadv = new byte[PageSize];
            memory.ReadBulk(page, viaReadv);
            Assert.Equal(data, viaReadv);

            // A partial, unaligned range; and typed access.
            var middle = new byte[100];
            memory.ReadBulk(page + 1000, middle);
            Assert.Equal(data.AsSpan(1000, 100).ToArray(), middle);
            memory.Write(page + 8, 0x1122334455667788UL);
            Assert.Equal(0x1122334455667788UL, memory.Read<ulong>(page + 8));
        }

        calls.Munmap(page, PageSize);
        Assert.DoesNotContain(ProcFs.ReadMaps(pid), m => m.Start <= page && page < m.End);
        Assert.Throws<KernelCallException>(() => memory.Read<ulong>(page));

        // An injected syscall's errno comes back as an exception naming it (munmap of a misaligned address: EINVAL).
        var error = Assert.Throws<KernelCallException>(() => calls.Munmap(page + 1, PageSize));
        Assert.Equal(Errnos.EINVAL, error.Errno);

        injector.RestoreRegisters();
        var restored = tracee.GetRegisters();
        Assert.Equal(34UL, restored.OrigRax);
        Assert.Equal(RestartNoHand, restored.Rax);
        Assert.Equal(Husk.SyscallAddress + 2, restored.Rip);
        Assert.Equal(regs.Rsp, restored.Rsp);
        Assert.Equal(0, injector.DeferredSignal);
        Assert.Empty(injector.NewChildren);

        tracee.Detach(injector.DeferredSignal);
        Assert.False(tracee.Attached);
    }

    [Fact]
    public void PtraceFromAnotherThreadIsRefused()
    {
        using var husk = new HuskChild();
        try
        {
            husk.WaitUntilPaused();
            Tracee? tracee = null;
            PtraceThread.Run(() =>
            {
                tracee = Tracee.Seize(husk.Pid, husk.Pid, PtraceOptions.None);
                Assert.True(tracee.WaitForStop().IsEventStop);
                PtraceThread.Run(() =>
                {
                    Assert.Throws<InvalidOperationException>(() => tracee.GetRegisters());
                    tracee.Dispose(); // from the wrong thread: does nothing, does not throw
                    Assert.True(tracee.Attached);
                });
                tracee.Detach();
            });
            Assert.False(tracee!.Attached);
            husk.WaitUntilPaused();
        }
        finally
        {
            husk.KillAndReap();
        }
        AssertKilledBySigkill(husk);
    }

    [Fact]
    public void KillingATraceeEndsTheInjection()
    {
        using var husk = new HuskChild();
        try
        {
            husk.WaitUntilPaused();
            PtraceThread.Run(() =>
            {
                using var tracee = Tracee.Seize(husk.Pid, husk.Pid, PtraceOptions.ExitKill);
                Assert.True(tracee.WaitForStop().IsEventStop);
                var injector = new SyscallInjector(tracee, Husk.SyscallAddress, int3Follows: false);
                // exit_group(7) injected: the tracee is gone, and the injector says so.
                var gone = Assert.Throws<TargetGoneException>(() => injector.Call(231, 7));
                Assert.Equal(husk.Pid, gone.Pid);
                Assert.False(tracee.Attached);
            });
        }
        finally
        {
            husk.KillAndReap();
        }
        // The waitpid inside the injector reaped it already: the tracer is also its parent.
        Assert.Null(husk.Reaped);
        Assert.False(ProcFs.Exists(husk.Pid));
    }

    private static void AssertKilledBySigkill(HuskChild husk)
    {
        var status = Assert.NotNull(husk.Reaped);
        Assert.True(status.Signaled, status.ToString());
        Assert.Equal(Signals.SIGKILL, status.TermSignal);
        Assert.Equal(husk.Pid, status.Tid);
        Assert.False(ProcFs.Exists(husk.Pid));
    }
}
