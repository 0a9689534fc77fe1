using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int CLONE_NEWUTS = 0x04000000;
    internal const int CLONE_NEWIPC = 0x08000000;
    internal const int CLONE_NEWNET = 0x40000000;
    internal const int CLONE_NEWPID = 0x20000000;
    internal const int CLONE_NEWNS = 0x00020000;

    /// <summary>unshare: a root, working directory and umask of the calling thread's own (what joining a mount namespace needs).</summary>
    internal const int CLONE_FS = 0x00000200;

    /// <summary>The flags of a network interface by name (struct ifreq: 16-byte name, then a short).</summary>
    internal const ulong SIOCGIFFLAGS = 0x8913;
    internal const ulong SIOCSIFFLAGS = 0x8914;
    internal const int IfreqSize = 40;
    internal const short IFF_UP = 1;

    /// <summary>Joins the namespace an nsfd refers to: the calling thread only, for UTS, IPC and network; for PID, what the thread starts from then on.</summary>
    [LibraryImport(Libc, EntryPoint = "setns", SetLastError = true)]
    internal static partial int Setns(int fd, int nstype);

    /// <summary>New namespaces for the calling thread (and what it starts from then on).</summary>
    [LibraryImport(Libc, EntryPoint = "unshare", SetLastError = true)]
    internal static partial int Unshare(int flags);

    [LibraryImport(Libc, EntryPoint = "sethostname", SetLastError = true)]
    internal static unsafe partial int Sethostname(byte* name, nuint length);

    [LibraryImport(Libc, EntryPoint = "setdomainname", SetLastError = true)]
    internal static unsafe partial int Setdomainname(byte* name, nuint length);

    [LibraryImport(Libc, EntryPoint = "gethostname", SetLastError = true)]
    internal static unsafe partial int Gethostname(byte* name, nuint length);

    [LibraryImport(Libc, EntryPoint = "getdomainname", SetLastError = true)]
    internal static unsafe partial int Getdomainname(byte* name, nuint length);
}
