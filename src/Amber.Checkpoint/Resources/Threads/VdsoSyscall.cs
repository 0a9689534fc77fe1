using Amber.Kernel.Memory;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Threads;

/// <summary>Finds a `syscall` instruction (0f 05) in a process's [vdso], so syscalls can be injected without writing code.</summary>
public static class VdsoSyscall
{
    public static ulong Find(IReadOnlyList<MapsEntry> maps, RemoteMemory memory, int pid)
    {
        var vdso = maps.FirstOrDefault(m => m.Path == "[vdso]");
        if (vdso.Start == 0)
            throw new CheckpointException($"process {pid} has no [vdso]; Amber needs it to run syscalls in the process");
        var bytes = new byte[vdso.Length];
        memory.Read(vdso.Start, bytes);
        int at = bytes.AsSpan().IndexOf((ReadOnlySpan<byte>)[0x0f, 0x05]);
        if (at < 0)
            throw new CheckpointException($"process {pid}: no syscall instruction in its [vdso]");
        return vdso.Start + (ulong)at;
    }
}
