using Amber.Native;

namespace Amber.Kernel.Features;

/// <summary>The calls a checkpoint reads memory with and a restore rebuilds an mm with, tried on ourselves.</summary>
internal static class MemoryProbes
{
    /// <summary>Asks the size of struct prctl_mm_map: harmless, and it fails where PR_SET_MM_MAP is missing.</summary>
    public static unsafe (bool Present, string Detail) PrSetMmMap()
    {
        uint size = 0;
        Errnos.Check(Interop.Prctl(Interop.PR_SET_MM, Interop.PR_SET_MM_MAP_SIZE, (ulong)&size, 0, 0), "prctl(PR_SET_MM, PR_SET_MM_MAP_SIZE)", "self");
        return size == PrctlMmMap.Size
            ? (true, $"struct prctl_mm_map is {size} bytes")
            : (false, $"struct prctl_mm_map is {size} bytes, Amber knows {PrctlMmMap.Size}");
    }

    public static unsafe (bool Present, string Detail) ProcessVmReadv()
    {
        ulong source = 0x616d626572636b21; // "!kcrebma"
        ulong destination = 0;
        var local = new Iovec { iov_base = (nint)(&destination), iov_len = sizeof(ulong) };
        var remote = new Iovec { iov_base = (nint)(&source), iov_len = sizeof(ulong) };
        long read = Errnos.Check((long)Interop.ProcessVmReadv(Environment.ProcessId, &local, 1, &remote, 1, 0), "process_vm_readv", "self");
        return read == sizeof(ulong) && destination == source
            ? (true, $"read {read} bytes of our own memory")
            : (false, $"read {read} bytes, 0x{destination:x} instead of 0x{source:x}");
    }
}
