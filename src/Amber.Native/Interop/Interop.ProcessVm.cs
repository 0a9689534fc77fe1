using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "process_vm_readv", SetLastError = true)]
    internal static unsafe partial nint ProcessVmReadv(int pid, Iovec* local, ulong localCount, Iovec* remote, ulong remoteCount, ulong flags);

    [LibraryImport(Libc, EntryPoint = "process_vm_writev", SetLastError = true)]
    internal static unsafe partial nint ProcessVmWritev(int pid, Iovec* local, ulong localCount, Iovec* remote, ulong remoteCount, ulong flags);
}
