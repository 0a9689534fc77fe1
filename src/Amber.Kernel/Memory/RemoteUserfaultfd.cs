using System.Runtime.InteropServices;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;
using Amber.Native;

namespace Amber.Kernel.Memory;

/// <summary>
/// A userfaultfd of a stopped process's memory, held here: made there (injected), copied here
/// (pidfd_getfd), closed there again (its fd table is as it was), its API set up with the features
/// asked for. Write tracking (<see cref="DirtyTracker"/>) and missing pages (<see cref="MissingPages"/>) start so.
/// </summary>
internal static class RemoteUserfaultfd
{
    /// <param name="kernelFaults">Whether the kernel's own accesses are served too (<see cref="RemoteCalls.Userfaultfd"/>).</param>
    /// <param name="features">UFFD_FEATURE_* bits, named in <paramref name="named"/> for the error.</param>
    public static unsafe HeldFile Make(int pid, RemoteCalls calls, bool kernelFaults, ulong features, string named)
    {
        int remote = calls.Userfaultfd(kernelFaults);
        HeldFile copy;
        try
        {
            copy = HeldFile.CopyOf(pid, remote);
        }
        finally
        {
            calls.Close(remote);
        }
        var api = new UffdioApi { api = Interop.UFFD_API, features = features };
        if (Interop.Ioctl(copy.Fd, Interop.UFFDIO_API, &api) < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            copy.Dispose();
            throw new KernelCallException($"ioctl(UFFDIO_API, {named})", $"a userfaultfd of process {pid}", errno);
        }
        return copy;
    }
}
