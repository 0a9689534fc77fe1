namespace Amber.Integration.Tests;

/// <summary>
/// memfds mapped twice, sealed memfds, shared anonymous memory, System V segments, POSIX shared
/// memory and deleted files, within a process and between processes: shared again, not copied.
/// </summary>
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

    [Fact]
    public void MemoryAndDeletedFilesSharedBetweenProcessesStaySharedOverTwoCycles()
    {
        using var dir = new TestDir("shmshare");
        using var target = TargetProcess.StartC("shmshare", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        int childA = target.Tree()[1];
        var before = SharedMappings(childA);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(5);
            // The same mappings, at the same places, of the same kinds of object (the inodes are new).
            Assert.Equal(before, SharedMappings(childA));
        }
        target.StopAndVerify();
    }

    /// <summary>A process's mappings of shared objects and deleted files, without their inode numbers.</summary>
    private static List<string> SharedMappings(int pid) =>
        [.. File.ReadAllLines($"/proc/{pid}/maps")
            .Where(l => l.Contains("(deleted)"))
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries))
            .Select(f => $"{f[0]} {f[1]} {f[2]} {string.Join(' ', f[5..])}")];
}
