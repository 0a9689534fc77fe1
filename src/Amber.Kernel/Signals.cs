namespace Amber.Kernel;

/// <summary>Signal numbers (x86_64 Linux) the engine refers to by name.</summary>
public static class Signals
{
    public const int SIGINT = 2;
    public const int SIGTRAP = 5;
    public const int SIGKILL = 9;
    public const int SIGTERM = 15;
    public const int SIGCHLD = 17;
    public const int SIGCONT = 18;
    public const int SIGSTOP = 19;
    public const int Count = 64;

    public static ulong Bit(int signal) => 1UL << (signal - 1);
}
