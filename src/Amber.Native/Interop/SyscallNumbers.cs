namespace Amber.Native;

/// <summary>x86_64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl).</summary>
internal static class SyscallNumbers
{
    internal const int Read = 0;
    internal const int Write = 1;
    internal const int Close = 3;
    internal const int Lseek = 8;
    internal const int Mmap = 9;
    internal const int Mprotect = 10;
    internal const int Munmap = 11;
    internal const int Brk = 12;
    internal const int RtSigaction = 13;
    internal const int RtSigprocmask = 14;
    internal const int Pread64 = 17;
    internal const int Mremap = 25;
    internal const int Madvise = 28;
    internal const int Pause = 34;
    internal const int Getitimer = 36;
    internal const int Setitimer = 38;
    internal const int Getpid = 39;
    internal const int Exit = 60;
    internal const int Kill = 62;
    internal const int Fcntl = 72;
    internal const int Chdir = 80;
    internal const int Fchdir = 81;
    internal const int Umask = 95;
    internal const int Setpgid = 109;
    internal const int Setsid = 112;
    internal const int Setgroups = 116;
    internal const int Setresuid = 117;
    internal const int Setresgid = 119;
    internal const int Sigaltstack = 131;
    internal const int Personality = 135;
    internal const int Prctl = 157;
    internal const int ArchPrctl = 158;
    internal const int Gettid = 186;
    internal const int SetTidAddress = 218;
    internal const int ExitGroup = 231;
    internal const int Tgkill = 234;
    internal const int Openat = 257;
    internal const int SetRobustList = 273;
    internal const int GetRobustList = 274;
    internal const int Dup3 = 292;
    internal const int Pipe2 = 293;
    internal const int RtTgsigqueueinfo = 297;
    internal const int RtSigqueueinfo = 129;
    internal const int Userfaultfd = 323;
    internal const int Prlimit64 = 302;
    internal const int Kcmp = 312;
    internal const int Rseq = 334;
    internal const int PidfdOpen = 434;
    internal const int Clone3 = 435;
    internal const int CloseRange = 436;
    internal const int PidfdGetfd = 438;
}
