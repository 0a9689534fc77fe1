using System.Buffers.Binary;
using Amber.Kernel.Processes;

namespace Amber.Kernel.Tests;

/// <summary>The husk's ELF image, byte by byte.</summary>
public sealed class HuskImageTests
{
    private static readonly byte[] Elf = Husk.Build();

    private static ushort U16(int offset) => BinaryPrimitives.ReadUInt16LittleEndian(Elf.AsSpan(offset));
    private static uint U32(int offset) => BinaryPrimitives.ReadUInt32LittleEndian(Elf.AsSpan(offset));
    private static ulong U64(int offset) => BinaryPrimitives.ReadUInt64LittleEndian(Elf.AsSpan(offset));

    [Fact]
    public void ElfHeader()
    {
        Assert.Equal(new byte[] { 0x7f, (byte)'E', (byte)'L', (byte)'F' }, Elf[..4]);
        Assert.Equal(2, Elf[4]); // ELFCLASS64
        Assert.Equal(1, Elf[5]); // ELFDATA2LSB
        Assert.Equal(1, Elf[6]); // EV_CURRENT
        Assert.Equal(2, U16(16)); // ET_EXEC
        Assert.Equal(0x3e, U16(18)); // EM_X86_64
        Assert.Equal(1U, U32(20));
        Assert.Equal(Husk.EntryAddress, U64(24)); // e_entry
        Assert.Equal(64UL, U64(32)); // e_phoff
        Assert.Equal(0UL, U64(40)); // e_shoff: no sections
        Assert.Equal(64, U16(52)); // e_ehsize
        Assert.Equal(56, U16(54)); // e_phentsize
        Assert.Equal(2, U16(56)); // e_phnum
        Assert.Equal(0, U16(60)); // e_shnum
    }

    [Fact]
    public void ProgramHeaders()
    {
        // PT_LOAD R+X of the whole file at the load address.
        Assert.Equal(1U, U32(64));
        Assert.Equal(5U, U32(64 + 4));
        Assert.Equal(0UL, U64(64 + 8)); // p_offset
        Assert.Equal(Husk.LoadAddress, U64(64 + 16));
        Assert.Equal((ulong)Elf.Length, U64(64 + 32));
        Assert.Equal((ulong)Elf.Length, U64(64 + 40));
        Assert.Equal(0UL, Husk.LoadAddress % U64(64 + 48)); // aligned to p_align

        // PT_GNU_STACK, RW (not executable).
        Assert.Equal(0x6474e551U, U32(120));
        Assert.Equal(6U, U32(120 + 4));
    }

    [Fact]
    public void EntryIsThePauseLoop()
    {
        int entry = (int)(Husk.EntryAddress - Husk.LoadAddress);
        Assert.InRange(entry, 64 + 2 * 56, Elf.Length - 1);
        // mov eax, 34; syscall; jmp back to the mov
        Assert.Equal(new byte[] { 0xb8, 34, 0, 0, 0, 0x0f, 0x05, 0xeb, 0xf7 }, Elf[entry..]);
        int syscall = (int)(Husk.SyscallAddress - Husk.LoadAddress);
        Assert.Equal(new byte[] { 0x0f, 0x05 }, Elf[syscall..(syscall + 2)]);
        // jmp rel8 -9 from the end of the jmp lands on the entry.
        Assert.Equal(entry, entry + 9 + (sbyte)Elf[entry + 8]);
    }
}
