using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>Handlers, a blocked signal pending (with its siginfo), queued real-time signals and an alternate stack.</summary>
public sealed class SignalTests
{
    [Fact]
    public void HandlersPendingSignalsAndAltStackSurviveTwoCycles()
    {
        using var dir = new TestDir("signals");
        using var target = TargetProcess.StartC("signals", dir);
        target.WaitForLine(l => l == "READY", "READY");
        for (int i = 0; i < 3; i++)
        {
            Spawner.Kill(target.Pid, 10); // SIGUSR1, handled on the alternate stack
            Thread.Sleep(30);
        }
        target.WaitForLine(l => l.EndsWith("usr1=3", StringComparison.Ordinal), "'usr1=3'");
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(2);
            Spawner.Kill(target.Pid, 10);
            target.WaitForLine(l => l.EndsWith($"usr1={3 + cycle}", StringComparison.Ordinal), $"'usr1={3 + cycle}'");
        }
        target.StopAndVerify();
    }
}
