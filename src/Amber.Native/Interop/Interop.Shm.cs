using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int IPC_CREAT = 0x200;
    internal const int IPC_EXCL = 0x400;
    internal const int IPC_RMID = 0;
    internal const int IPC_SET = 1;
    internal const int IPC_STAT = 2;
    internal const int SHM_RDONLY = 0x1000;
    internal const int ShmidDsSize = 112; // struct shmid_ds on x86_64

    [LibraryImport(Libc, EntryPoint = "shmget", SetLastError = true)]
    internal static partial int Shmget(int key, nuint size, int flags);

    [LibraryImport(Libc, EntryPoint = "shmat", SetLastError = true)]
    internal static partial nint Shmat(int id, nint address, int flags);

    [LibraryImport(Libc, EntryPoint = "shmdt", SetLastError = true)]
    internal static partial int Shmdt(nint address);

    [LibraryImport(Libc, EntryPoint = "shmctl", SetLastError = true)]
    internal static unsafe partial int Shmctl(int id, int command, byte* buffer);
}
