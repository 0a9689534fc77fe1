namespace Amber.Integration.Tests;

/// <summary>memfds mapped twice, sealed memfds and shared anonymous memory: shared again, not copied.</summary>
public sealed class SharedMemoryTests
{
    [Fact]
    public void MemfdViewsSealsAndSharedAnonymousMemorySurviveTwoCycles()
    {
        using var dir = new TestDir("shmem");
        using var target = TargetProcess.StartC("shmem", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(2);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(3);
            var maps = File.ReadAllLines($"/proc/{target.Pid}/maps");
            Assert.Equal(2, maps.Count(l => l.EndsWith("/memfd:jit (deleted)")));
            Assert.Single(maps, l => l.Contains("/dev/zero (deleted)"));
        }
        target.StopAndVerify();
    }
}
