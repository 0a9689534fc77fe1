using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int PR_SET_PDEATHSIG = 1;
    internal const int PR_GET_PDEATHSIG = 2;
    internal const int PR_GET_DUMPABLE = 3;
    internal const int PR_SET_DUMPABLE = 4;
    internal const int PR_GET_KEEPCAPS = 7;
    internal const int PR_SET_KEEPCAPS = 8;
    internal const int PR_SET_TIMERSLACK = 29;
    internal const int PR_GET_TIMERSLACK = 30;
    internal const int PR_MCE_KILL = 33;
    internal const int PR_MCE_KILL_GET = 34;
    internal const int PR_SET_THP_DISABLE = 41;
    internal const int PR_GET_THP_DISABLE = 42;
    internal const int PR_SET_MDWE = 65;
    internal const int PR_GET_MDWE = 66;
    internal const int PR_SET_NAME = 15;
    internal const int PR_CAPBSET_DROP = 24;
    internal const int PR_CAP_AMBIENT = 47;
    internal const int PR_CAP_AMBIENT_RAISE = 2;
    internal const int PR_TIMER_CREATE_RESTORE_IDS = 77;
    internal const int PR_SET_NO_NEW_PRIVS = 38;
    internal const int PR_GET_NO_NEW_PRIVS = 39;
    internal const int PR_SET_MM = 35;
    internal const int PR_SET_CHILD_SUBREAPER = 36;
    internal const int PR_GET_CHILD_SUBREAPER = 37;
    internal const int PR_GET_TID_ADDRESS = 40;
    internal const int PR_SET_MM_MAP = 14;
    internal const int PR_SET_MM_MAP_SIZE = 15;

    [LibraryImport(Libc, EntryPoint = "prctl", SetLastError = true)]
    internal static partial int Prctl(int option, ulong arg2, ulong arg3, ulong arg4, ulong arg5);
}
