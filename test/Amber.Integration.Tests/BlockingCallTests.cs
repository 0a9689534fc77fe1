namespace Amber.Integration.Tests;

/// <summary>A program stopped inside a blocking call carries on correctly after restore.</summary>
public sealed class BlockingCallTests
{
    [Theory]
    [InlineData("sleep")]
    [InlineData("futex")]
    [InlineData("poll")]
    public void StoppedInsideBlockingCall(string mode)
    {
        using var dir = new TestDir("block-" + mode);
        using var target = TargetProcess.StartC("blocker", dir, mode);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(1);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(2); // each tick checks the call took its full time and did not fail
        }
        target.StopAndVerify();
    }
}
