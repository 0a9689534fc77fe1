using Amber.Kernel.Inject;
using Amber.Kernel.Memory;
using Amber.Kernel.Processes;
using Amber.Kernel.Ptrace;

namespace Amber.Kernel.Tests;

/// <summary>A husk seized on a tracer thread, with calls injected through a trampoline mapped into it.</summary>
internal static class InjectedHusk
{
    private const ulong Page = 4096;

    /// <summary>
    /// Runs <paramref name="test"/> on the tracer thread with the husk's PID, its calls, a batch (the
    /// trampoline's code, then a batch area) and its memory; the husk is killed afterwards.
    /// </summary>
    public static void Run(Action<int, RemoteCalls, SyscallBatch, RemoteMemory> test)
    {
        using var husk = new HuskChild();
        try
        {
            husk.WaitUntilPaused();
            PtraceThread.Run(() =>
            {
                using var tracee = Tracee.Seize(husk.Pid, husk.Pid, PtraceOptions.ExitKill);
                Assert.True(tracee.WaitForStop().IsEventStop);
                using var memory = new RemoteMemory(husk.Pid);
                var bootstrap = new SyscallInjector(tracee, Husk.SyscallAddress, int3Follows: false);
                var boot = new RemoteCalls(bootstrap, memory, 0, 0);
                ulong trampoline = boot.Mmap(0, 4 * Page, Mman.ProtRead | Mman.ProtWrite | Mman.ProtExec, Mman.MapPrivate | Mman.MapAnonymous);
                memory.Write(trampoline, Trampoline.Code);
                var injector = new SyscallInjector(tracee, trampoline, int3Follows: true, bootstrap.OriginalRegisters);
                var calls = new RemoteCalls(injector, memory, trampoline + Page, (int)Page);
                test(husk.Pid, calls, new SyscallBatch(calls, trampoline + 2 * Page, 2 * (int)Page), memory);
            });
        }
        finally
        {
            husk.KillAndReap();
        }
    }
}
