using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int IPC_NOWAIT = 0x800;
    internal const int MSG_NOERROR = 0x1000;
    internal const int MSG_COPY = 0x4000;
    internal const int GETPID = 11;
    internal const int GETALL = 13;
    internal const int SETALL = 17;
    internal const int ENOMSG = 42;
    internal const int SemidDsSize = 104; // struct semid_ds on x86_64
    internal const int MsqidDsSize = 120; // struct msqid_ds on x86_64

    [LibraryImport(Libc, EntryPoint = "semget", SetLastError = true)]
    internal static partial int Semget(int key, int count, int flags);

    /// <summary>semctl's fourth argument is a union semun: an int, or a pointer.</summary>
    [LibraryImport(Libc, EntryPoint = "semctl", SetLastError = true)]
    internal static partial int Semctl(int id, int number, int command, nint argument);

    [LibraryImport(Libc, EntryPoint = "msgget", SetLastError = true)]
    internal static partial int Msgget(int key, int flags);

    [LibraryImport(Libc, EntryPoint = "msgctl", SetLastError = true)]
    internal static unsafe partial int Msgctl(int id, int command, byte* buffer);

    /// <summary>buffer: struct msgbuf, a long type then the text.</summary>
    [LibraryImport(Libc, EntryPoint = "msgrcv", SetLastError = true)]
    internal static unsafe partial nint Msgrcv(int id, byte* buffer, nuint size, long type, int flags);

    [LibraryImport(Libc, EntryPoint = "msgsnd", SetLastError = true)]
    internal static unsafe partial int Msgsnd(int id, byte* buffer, nuint size, int flags);
}
