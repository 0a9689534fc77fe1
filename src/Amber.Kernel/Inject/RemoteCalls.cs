using System.Text;
using Amber.Kernel.Memory;
using Amber.Native;

namespace Amber.Kernel.Inject;

/// <summary>
/// Typed syscalls run inside a tracee through a <see cref="SyscallInjector"/>. Arguments that are
/// structs or strings go through a scratch area in the tracee's memory, written and read with
/// <see cref="RemoteMemory"/>. Errors come back as <see cref="KernelCallException"/> naming the call.
/// </summary>
public sealed partial class RemoteCalls
{
    public RemoteCalls(SyscallInjector injector, RemoteMemory memory, ulong scratch, int scratchSize)
    {
        Injector = injector;
        Memory = memory;
        Scratch = scratch;
        ScratchSize = scratchSize;
    }

    public SyscallInjector Injector { get; }

    public RemoteMemory Memory { get; }

    public ulong Scratch { get; }

    public int ScratchSize { get; }

    public RemoteCalls WithInjector(SyscallInjector injector) => new(injector, Memory, Scratch, ScratchSize);

    private long Call(string name, long nr, params ReadOnlySpan<ulong> args) => Injector.CallChecked(name, nr, args);

    private ulong WriteString(string value, int offset = 0)
    {
        var bytes = Encoding.UTF8.GetBytes(value + "\0");
        if (offset + bytes.Length > ScratchSize)
            throw new ArgumentException($"path too long for the scratch area: {value}");
        Memory.Write(Scratch + (ulong)offset, bytes);
        return Scratch + (ulong)offset;
    }

    public int GetPid() => (int)Call("getpid", SyscallNumbers.Getpid);
}
