using Amber.Kernel.Files;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>
/// System V semaphores and message queues a process tree uses live in the kernel: a checkpoint saves
/// them and a restore puts them back as they were — recreated with the same ids after they were
/// removed, or set back when a stranger changed them meanwhile.
/// </summary>
public sealed class SysvIpcTests
{
    [Fact]
    public void SemaphoresAndMessageQueuesComeBackAsTheyWereOverTwoCycles()
    {
        using var dir = new TestDir("sysvipc");
        using var target = TargetProcess.StartC("sysvipc", dir);
        var ids = target.WaitForLine(l => l.StartsWith("IDS ", StringComparison.Ordinal), "IDS").Split(' ');
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);

        // Cycle 1: the objects are removed while the processes are gone.
        Cycle.CheckpointKillRestore(target, dir["img1"], null, [], () => Run("/usr/bin/ipcrm", "-s", ids[1], "-q", ids[2]));
        target.WaitForTicks(5);
        // Cycle 2: a stranger changes them while the processes are gone.
        Cycle.CheckpointKillRestore(target, dir["img2"], null, [], () => Run(TargetBinaries.Get("sysvipc"), "--meddle", ids[1], ids[2]));
        target.WaitForTicks(5);
        target.StopAndVerify();
    }

    private static void Run(string program, params string[] args)
    {
        int pid = Spawner.Spawn(new SpawnOptions(program, args) { Opens = [(0, "/dev/null", SpawnOptions.Read), (1, "/dev/null", OpenFlags.WriteOnly), (2, "/dev/null", OpenFlags.WriteOnly)] });
        var status = Exited.Wait(pid, TimeSpan.FromSeconds(10), program);
        Assert.True(status.Exited && status.ExitCode == 0, $"{program} {string.Join(' ', args)}: {status}");
    }
}
