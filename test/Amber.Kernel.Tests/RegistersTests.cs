using System.Buffers.Binary;
using Amber.Kernel.Ptrace;

namespace Amber.Kernel.Tests;

/// <summary>Registers as user_regs_struct bytes, and the syscall-restart rewrite.</summary>
public sealed class RegistersTests
{
    // Offsets in struct user_regs_struct (x86_64).
    private const int RaxOffset = 80;
    private const int OrigRaxOffset = 120;
    private const int RipOffset = 128;
    private const int RspOffset = 152;
    private const int FsBaseOffset = 168;
    private const int GsBaseOffset = 176;
    private const int Size = 216;

    private static byte[] Bytes(long rax, long origRax, ulong rip)
    {
        var b = new byte[Size];
        // Every other byte gets a recognisable value, so a stray write shows up.
        for (int i = 0; i < b.Length; i++)
            b[i] = (byte)(i * 7 + 1);
        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(RaxOffset), rax);
        BinaryPrimitives.WriteInt64LittleEndian(b.AsSpan(OrigRaxOffset), origRax);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(RipOffset), rip);
        return b;
    }

    [Fact]
    public void FromBytesReadsTheFieldsAtTheirOffsets()
    {
        var b = Bytes(-514, 34, 0x401007);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(RspOffset), 0x7ffd0000);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(FsBaseOffset), 0x7f0000001000);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(GsBaseOffset), 0x7f0000002000);
        var r = Registers.FromBytes(b);
        Assert.Equal(unchecked((ulong)-514L), r.Rax);
        Assert.Equal(34UL, r.OrigRax);
        Assert.Equal(0x401007UL, r.Rip);
        Assert.Equal(0x7ffd0000UL, r.Rsp);
        Assert.Equal(0x7f0000001000UL, r.FsBase);
        Assert.Equal(0x7f0000002000UL, r.GsBase);
        Assert.Equal(b, r.ToBytes());
        Assert.Equal(b, r.Clone().ToBytes());
    }

    [Theory]
    [InlineData(0)]
    [InlineData(215)]
    [InlineData(217)]
    [InlineData(512)]
    public void FromBytesRejectsOtherSizes(int size)
    {
        Assert.Throws<ArgumentException>(() => Registers.FromBytes(new byte[size]));
    }

    [Theory]
    [InlineData(-512, 34)] // ERESTARTSYS
    [InlineData(-513, 34)] // ERESTARTNOINTR
    [InlineData(-514, 34)] // ERESTARTNOHAND
    [InlineData(-516, 230)] // ERESTART_RESTARTBLOCK (clock_nanosleep)
    [InlineData(-512, 0)] // read(2) is syscall 0: orig_rax 0 is a syscall too
    public void RestartableSyscallIsRewound(long rax, long origRax)
    {
        var before = Bytes(rax, origRax, 0x401007);
        var r = Registers.FromBytes(before);
        Assert.True(r.PrepareSyscallRestart());
        Assert.Equal((ulong)origRax, r.Rax);
        Assert.Equal(0x401005UL, r.Rip);
        Assert.Equal(ulong.MaxValue, r.OrigRax);

        // Nothing else changed.
        var after = r.ToBytes();
        var expected = Bytes(origRax, -1, 0x401005);
        Assert.Equal(expected, after);
    }

    [Theory]
    [InlineData(-514, -1)] // not in a syscall
    [InlineData(-512, -2)]
    [InlineData(-4, 34)] // EINTR: already final
    [InlineData(-515, 34)] // ENOIOCTLCMD, between the restart codes
    [InlineData(-511, 34)]
    [InlineData(-517, 34)]
    [InlineData(0, 34)]
    [InlineData(34, 34)]
    [InlineData(512, 34)]
    public void OtherStatesAreLeftAlone(long rax, long origRax)
    {
        var before = Bytes(rax, origRax, 0x401007);
        var r = Registers.FromBytes(before);
        Assert.False(r.PrepareSyscallRestart());
        Assert.Equal(before, r.ToBytes());
    }

    [Fact]
    public void PrepareSyscallSetsNumberArgumentsAndNoRestart()
    {
        var r = Registers.FromBytes(Bytes(-514, 34, 0x401007));
        r.PrepareSyscall(0x401005, 9, [1, 2, 3, 4, 5, 6]);
        var b = r.ToBytes();
        Assert.Equal(0x401005UL, r.Rip);
        Assert.Equal(9UL, r.Rax);
        Assert.Equal(ulong.MaxValue, r.OrigRax);
        // rdi 112, rsi 104, rdx 96, r10 56, r8 72, r9 64
        Assert.Equal(1UL, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(112)));
        Assert.Equal(2UL, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(104)));
        Assert.Equal(3UL, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(96)));
        Assert.Equal(4UL, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(56)));
        Assert.Equal(5UL, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(72)));
        Assert.Equal(6UL, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(64)));
        Assert.False(r.PrepareSyscallRestart());

        r.PrepareSyscall(0x401005, 39, []);
        b = r.ToBytes();
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(112)));
        Assert.Equal(0UL, BinaryPrimitives.ReadUInt64LittleEndian(b.AsSpan(64)));
    }
}
