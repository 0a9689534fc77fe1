namespace Amber.Kernel.Inject;

/// <summary>
/// The code a restore writes into the process it builds: <c>syscall; int3</c> for one injected call
/// at a time (<see cref="SyscallInjector"/>), and at <see cref="RunnerOffset"/> a loop that makes a
/// table of calls in one stop (<see cref="SyscallBatch"/>). A stop costs a round trip through
/// ptrace and the scheduler, tens of µs on these VMs; a .NET process has ~1 000 mappings, each a few
/// calls to rebuild.
/// </summary>
public static class Trampoline
{
    /// <summary>Where the loop starts, after <c>syscall; int3</c> and padding.</summary>
    public const int RunnerOffset = 16;

    /// <summary>
    /// The loop: r12 points at the first entry (8 words: number, 6 arguments, what it must return),
    /// r13 counts the entries left. Each result replaces its entry's last word. It stops at the int3
    /// after the last entry, or at the first that returns -errno or other than it must (-1: anything
    /// but an error); r13 then still counts that entry. syscall itself clobbers rcx and r11 only.
    /// </summary>
    public static ReadOnlySpan<byte> Code =>
    [
        0x0f, 0x05,                         // 00 syscall
        0xcc,                               // 02 int3
        0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc, 0xcc,
        0x49, 0x8b, 0x04, 0x24,             // 10 mov rax, [r12]
        0x49, 0x8b, 0x7c, 0x24, 0x08,       // 14 mov rdi, [r12+8]
        0x49, 0x8b, 0x74, 0x24, 0x10,       // 19 mov rsi, [r12+16]
        0x49, 0x8b, 0x54, 0x24, 0x18,       // 1e mov rdx, [r12+24]
        0x4d, 0x8b, 0x54, 0x24, 0x20,       // 23 mov r10, [r12+32]
        0x4d, 0x8b, 0x44, 0x24, 0x28,       // 28 mov r8, [r12+40]
        0x4d, 0x8b, 0x4c, 0x24, 0x30,       // 2d mov r9, [r12+48]
        0x0f, 0x05,                         // 32 syscall
        0x49, 0x8b, 0x4c, 0x24, 0x38,       // 34 mov rcx, [r12+56]   what it must return
        0x49, 0x89, 0x44, 0x24, 0x38,       // 39 mov [r12+56], rax   what it did
        0x48, 0x3d, 0x01, 0xf0, 0xff, 0xff, // 3e cmp rax, -4095
        0x73, 0x14,                         // 44 jae stop            -errno
        0x48, 0x83, 0xf9, 0xff,             // 46 cmp rcx, -1
        0x74, 0x05,                         // 4a je next             anything goes
        0x48, 0x39, 0xc8,                   // 4c cmp rax, rcx
        0x75, 0x09,                         // 4f jne stop
        0x49, 0x83, 0xc4, 0x40,             // 51 next: add r12, 64
        0x49, 0xff, 0xcd,                   // 55 dec r13
        0x75, 0xb6,                         // 58 jnz 10
        0xcc,                               // 5a stop: int3
    ];

    /// <summary>Where a thread that ran the loop stops (after its int3), from the trampoline's start.</summary>
    public const int RunnerStop = 0x5b;

    /// <summary>The bytes of one entry of the loop's table.</summary>
    public const int EntrySize = 64;
}
