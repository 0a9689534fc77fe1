namespace Amber.Integration.Tests;

/// <summary>PROT_NONE guards holding data, mprotect'ed ranges, a private file mapping with modified pages.</summary>
public sealed class MemoryLayoutTests
{
    [Fact]
    public void GuardsProtectionsAndFileMappingsSurviveTwoCycles()
    {
        using var dir = new TestDir("guards");
        using var target = TargetProcess.StartC("guards", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(2);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(3); // each tick compares /proc/self/maps with the copy taken at start
        }
        target.StopAndVerify();
    }
}
