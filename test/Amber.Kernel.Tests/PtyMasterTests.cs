using System.Buffers.Binary;
using Amber.Kernel.Files;

namespace Amber.Kernel.Tests;

/// <summary>A real pseudo-terminal of the test process, read and set through its master as a checkpoint and a restore do.</summary>
public sealed class PtyMasterTests : IDisposable
{
    private const uint Isig = 0x1, Icanon = 0x2, Echo = 0x8, Iexten = 0x8000, Opost = 0x1;

    private readonly FileStream _master = new(File.OpenHandle("/dev/ptmx", FileMode.Open, FileAccess.ReadWrite), FileAccess.ReadWrite, bufferSize: 0);
    private FileStream? _slave;

    private int MasterFd => (int)_master.SafeFileHandle.DangerousGetHandle();

    [Fact]
    public void BytesTakenOutOfBothSidesAndPutBackAreReadAsTheyWere()
    {
        using var pty = PtyMaster.Of(Environment.ProcessId, MasterFd);
        Assert.True(pty.Locked);
        pty.Locked = false;
        // Non-canonical, no echo, signals, input or output processing: what goes in comes out.
        var termios = pty.Termios;
        Assert.Equal(PtyMaster.TermiosSize, termios.Length);
        BinaryPrimitives.WriteUInt32LittleEndian(termios, 0);
        BinaryPrimitives.WriteUInt32LittleEndian(termios.AsSpan(12), BinaryPrimitives.ReadUInt32LittleEndian(termios.AsSpan(12)) & ~(Icanon | Echo | Isig | Iexten));
        BinaryPrimitives.WriteUInt32LittleEndian(termios.AsSpan(4), BinaryPrimitives.ReadUInt32LittleEndian(termios.AsSpan(4)) & ~Opost);
        pty.Termios = termios;
        Assert.False(PtyMaster.Canonical(pty.Termios));
        _slave = new FileStream(File.OpenHandle($"/dev/pts/{pty.Index}", FileMode.Open, FileAccess.ReadWrite), FileAccess.ReadWrite, bufferSize: 0);
        byte[] forSlave = [.. "typed\r\n"u8, 0x03, 0x7f, 0xff, 0x00], forMaster = [.. "shown\n"u8, 0x1b, 0x00];
        _master.Write(forSlave);
        _slave.Write(forMaster);
        Wait(() => pty.Queued == forMaster.Length && pty.SlaveQueued == forSlave.Length);

        var toMaster = pty.TakeFromMaster();
        var toSlave = pty.TakeFromSlave();
        Assert.Equal(forMaster, toMaster);
        Assert.Equal(forSlave, toSlave);
        Assert.Equal(0, pty.Queued);
        Assert.Equal(0, pty.SlaveQueued);
        pty.PutForSlave(toSlave);
        pty.PutForMaster(toMaster);

        Assert.Equal(termios, pty.Termios); // the settings of the moment are gone again
        Assert.Equal(forMaster, Read(_master, forMaster.Length));
        Assert.Equal(forSlave, Read(_slave, forSlave.Length));
        Assert.False(pty.SlaveClosed);
    }

    [Fact]
    public void ASlaveOpenedAndClosedIsToldFromOneNeverOpened()
    {
        using (var pty = PtyMaster.Of(Environment.ProcessId, MasterFd))
        {
            pty.Locked = false;
            Assert.False(pty.SlaveClosed);
            pty.WindowSize = [24, 0, 80, 0, 0, 0, 0, 0];
            Assert.Equal([24, 0, 80, 0, 0, 0, 0, 0], pty.WindowSize);
            pty.OpenAndCloseSlave();
        }
        using var again = PtyMaster.Of(Environment.ProcessId, MasterFd);
        Assert.True(again.SlaveClosed);
        Assert.Equal(0, again.Session);
        Assert.False(again.PacketMode);
        Assert.Equal(0, again.LineDiscipline);
    }

    private static byte[] Read(FileStream from, int count)
    {
        var data = new byte[count];
        from.ReadExactly(data);
        return data;
    }

    private static void Wait(Func<bool> done)
    {
        var until = DateTime.UtcNow.AddSeconds(5);
        while (!done())
        {
            Assert.True(DateTime.UtcNow < until, "the bytes written never arrived");
            Thread.Sleep(1);
        }
    }

    public void Dispose()
    {
        _slave?.Dispose();
        _master.Dispose();
    }
}
