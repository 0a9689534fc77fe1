using System.Buffers.Binary;

namespace Amber.Kernel.Processes;

/// <summary>
/// The process a restore starts from: a static ELF of a few hundred bytes that only loops on
/// pause(). No libc, no TLS, no rseq registration (KERNEL.md pitfall 15), so nothing of it survives
/// once its mappings are replaced. Generated here, so no C toolchain is needed to restore.
/// </summary>
public static class Husk
{
    public const ulong LoadAddress = 0x400000;
    private const int HeaderSize = 64;
    private const int ProgramHeaderSize = 56;
    private const int CodeOffset = HeaderSize + 2 * ProgramHeaderSize;

    // loop: mov eax, 34 (pause); syscall; jmp loop
    private static ReadOnlySpan<byte> Code => [0xb8, 0x22, 0x00, 0x00, 0x00, 0x0f, 0x05, 0xeb, 0xf7];

    public static ulong EntryAddress => LoadAddress + CodeOffset;

    /// <summary>Address of the husk's own `syscall` instruction, usable for the first injections.</summary>
    public static ulong SyscallAddress => EntryAddress + 5;

    public static byte[] Build()
    {
        var elf = new byte[CodeOffset + Code.Length];
        var s = elf.AsSpan();
        s[0] = 0x7f; s[1] = (byte)'E'; s[2] = (byte)'L'; s[3] = (byte)'F';
        s[4] = 2; // 64-bit
        s[5] = 1; // little endian
        s[6] = 1; // ELF version
        BinaryPrimitives.WriteUInt16LittleEndian(s[16..], 2);          // ET_EXEC
        BinaryPrimitives.WriteUInt16LittleEndian(s[18..], 0x3e);       // EM_X86_64
        BinaryPrimitives.WriteUInt32LittleEndian(s[20..], 1);
        BinaryPrimitives.WriteUInt64LittleEndian(s[24..], EntryAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(s[32..], HeaderSize); // e_phoff
        BinaryPrimitives.WriteUInt16LittleEndian(s[52..], HeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(s[54..], ProgramHeaderSize);
        BinaryPrimitives.WriteUInt16LittleEndian(s[56..], 2);          // e_phnum

        // PT_LOAD, R+X, the whole file at LoadAddress.
        var load = s.Slice(HeaderSize, ProgramHeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(load, 1);
        BinaryPrimitives.WriteUInt32LittleEndian(load[4..], 5);
        BinaryPrimitives.WriteUInt64LittleEndian(load[16..], LoadAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(load[24..], LoadAddress);
        BinaryPrimitives.WriteUInt64LittleEndian(load[32..], (ulong)elf.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(load[40..], (ulong)elf.Length);
        BinaryPrimitives.WriteUInt64LittleEndian(load[48..], 0x1000);

        // PT_GNU_STACK, RW: without it the stack would be executable, and that would outlive the husk.
        var stack = s.Slice(HeaderSize + ProgramHeaderSize, ProgramHeaderSize);
        BinaryPrimitives.WriteUInt32LittleEndian(stack, 0x6474e551);
        BinaryPrimitives.WriteUInt32LittleEndian(stack[4..], 6);
        BinaryPrimitives.WriteUInt64LittleEndian(stack[48..], 16);

        Code.CopyTo(s[CodeOffset..]);
        return elf;
    }
}
