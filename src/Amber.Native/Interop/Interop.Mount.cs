using System.Runtime.InteropServices;

namespace Amber.Native;

/// <summary>mount(2): the mounts a restore makes (injected into a husk or a restored process), and those an exec helper makes in a group's own mount namespace.</summary>
internal static partial class Interop
{
    internal const ulong MS_RDONLY = 1;
    internal const ulong MS_NOSUID = 2;
    internal const ulong MS_NODEV = 4;
    internal const ulong MS_NOEXEC = 8;
    internal const ulong MS_REMOUNT = 32;
    internal const ulong MS_NOATIME = 1024;
    internal const ulong MS_NODIRATIME = 2048;
    internal const ulong MS_BIND = 4096;
    internal const ulong MS_REC = 16384;
    internal const ulong MS_PRIVATE = 1 << 18;
    internal const ulong MS_RELATIME = 1 << 21;

    /// <summary>In the calling thread's mount namespace; a null string is passed as NULL.</summary>
    [LibraryImport(Libc, EntryPoint = "mount", SetLastError = true)]
    internal static unsafe partial int Mount(byte* source, byte* target, byte* fsType, ulong flags, byte* data);
}
