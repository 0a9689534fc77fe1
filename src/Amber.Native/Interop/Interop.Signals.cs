using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int SIGHUP = 1;
    internal const int SIGINT = 2;
    internal const int SIGTRAP = 5;
    internal const int SIGKILL = 9;
    internal const int SIGUSR1 = 10;
    internal const int SIGSEGV = 11;
    internal const int SIGTERM = 15;
    internal const int SIGCHLD = 17;
    internal const int SIGCONT = 18;
    internal const int SIGSTOP = 19;
    internal const int SIGTSTP = 20;
    internal const int SIGTTIN = 21;
    internal const int SIGTTOU = 22;
    internal const int NSIG = 64;

    [LibraryImport(Libc, EntryPoint = "kill", SetLastError = true)]
    internal static partial int Kill(int pid, int signal);

    [LibraryImport(Libc, EntryPoint = "tgkill", SetLastError = true)]
    internal static partial int Tgkill(int tgid, int tid, int signal);
}
