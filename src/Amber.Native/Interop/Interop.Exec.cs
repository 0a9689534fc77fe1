using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    [LibraryImport(Libc, EntryPoint = "execve", SetLastError = true)]
    internal static unsafe partial int Execve(byte* path, byte** argv, byte** envp);

    [LibraryImport(Libc, EntryPoint = "setresuid", SetLastError = true)]
    internal static partial int Setresuid(uint ruid, uint euid, uint suid);

    [LibraryImport(Libc, EntryPoint = "setresgid", SetLastError = true)]
    internal static partial int Setresgid(uint rgid, uint egid, uint sgid);

    [LibraryImport(Libc, EntryPoint = "setgroups", SetLastError = true)]
    internal static unsafe partial int Setgroups(nuint count, uint* groups);
}
