using Amber.Kernel.Ptrace;

namespace Amber.Kernel.Tests;

/// <summary>waitpid status words decoded as wait(2) and ptrace(2) define them.</summary>
public sealed class WaitStatusTests
{
    [Fact]
    public void Exited()
    {
        var s = new WaitStatus(1, 3 << 8);
        Assert.True(s.Exited);
        Assert.Equal(3, s.ExitCode);
        Assert.False(s.Signaled);
        Assert.False(s.Stopped);
        Assert.True(s.IsGone);
        Assert.Equal("exited with code 3", s.ToString());
    }

    [Theory]
    [InlineData(9, 9)]
    [InlineData(0x80 | 11, 11)] // core dumped
    public void KilledBySignal(int raw, int signal)
    {
        var s = new WaitStatus(1, raw);
        Assert.True(s.Signaled);
        Assert.Equal(signal, s.TermSignal);
        Assert.False(s.Exited);
        Assert.False(s.Stopped);
        Assert.True(s.IsGone);
        Assert.Equal($"killed by signal {signal}", s.ToString());
    }

    [Fact]
    public void PtraceEventStop()
    {
        // PTRACE_INTERRUPT under PTRACE_SEIZE: SIGTRAP | PTRACE_EVENT_STOP << 8, in the stop signal byte.
        var s = new WaitStatus(1, (128 << 16) | (5 << 8) | 0x7f);
        Assert.True(s.Stopped);
        Assert.True(s.IsEventStop);
        Assert.Equal(128, s.Event);
        Assert.False(s.IsTrap);
        Assert.False(s.IsGone);
    }

    [Fact]
    public void SingleStepTrap()
    {
        var s = new WaitStatus(1, (5 << 8) | 0x7f);
        Assert.True(s.IsTrap);
        Assert.False(s.IsEventStop);
        Assert.Equal(0, s.Event);
        Assert.Equal(5, s.StopSignal);
        Assert.Equal("stopped by signal 5", s.ToString());
    }

    [Fact]
    public void SignalDeliveryStop()
    {
        var s = new WaitStatus(1, (10 << 8) | 0x7f);
        Assert.True(s.Stopped);
        Assert.False(s.IsTrap);
        Assert.False(s.IsEventStop);
        Assert.False(s.Signaled);
        Assert.Equal(10, s.StopSignal);
    }

    [Fact]
    public void ForkEvent()
    {
        var s = new WaitStatus(1, (1 << 16) | (5 << 8) | 0x7f);
        Assert.Equal(1, s.Event);
        Assert.False(s.IsTrap);
        Assert.False(s.IsEventStop);
    }
}
