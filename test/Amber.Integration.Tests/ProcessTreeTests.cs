using System.Globalization;

namespace Amber.Integration.Tests;

/// <summary>A whole tree: same PIDs, parents, process groups and session; a zombie and a stopped child as they were.</summary>
public sealed class ProcessTreeTests
{
    [Fact]
    public void TreeWithZombieAndStoppedChildSurvivesTwoCycles()
    {
        using var dir = new TestDir("tree");
        using var target = TargetProcess.StartC("tree", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        var before = Tree(target.Pid);
        Assert.Equal(5, before.Count);
        Assert.Contains(before, p => p.State == 'Z');
        Assert.Contains(before, p => p.State == 'T');
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            Assert.Equal(before, Tree(target.Pid));
            target.WaitForTicks(3);
        }
        target.StopAndVerify();
        var ticks = File.ReadAllLines(dir["grandchild.txt"]).Select(l => int.Parse(l.Split(' ')[1], CultureInfo.InvariantCulture)).ToList();
        Assert.True(ticks.Count > 10);
    }

    /// <summary>
    /// Children that exit between being listed and being stopped (a shell running commands) are no
    /// longer part of the tree, or zombies if their parent is stopped; threads that exit then (a pool's
    /// workers) are no longer part of their process: the checkpoint goes on. It failed two times in
    /// three here for the children ("process N does not exist", or PTRACE_SEIZE refused with EPERM),
    /// one in ten for the threads (a thread seized, gone before its stop).
    /// </summary>
    [Fact]
    public void ChildrenAndThreadsThatExitWhileBeingStoppedDoNotFailTheCheckpoint()
    {
        using var dir = new TestDir("churn");
        using var target = TargetProcess.StartC("churn", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(3);
        for (int i = 1; i <= 20; i++)
        {
            AmberCli.Run("checkpoint", target.Pid.ToString(CultureInfo.InvariantCulture), "--images", dir[$"running{i}"], "--leave-running").ShouldSucceed();
            Assert.True(target.IsRunning);
        }
        for (int cycle = 1; cycle <= 3; cycle++)
        {
            // Its children then are the image's (a list taken before the checkpoint is out of date at once).
            string images = dir[$"img{cycle}"];
            AmberCli.Run("checkpoint", target.Pid.ToString(CultureInfo.InvariantCulture), "--images", images).ShouldSucceed();
            using (var inspect = System.Text.Json.JsonDocument.Parse(AmberCli.Run("inspect", images, "--json").ShouldSucceed().Stdout))
                target.ReapKilled([.. inspect.RootElement.GetProperty("processes").EnumerateArray().Select(p => p.GetProperty("pid").GetInt32()).Where(p => p != target.Pid)]);
            var restored = AmberCli.Run("restore", "--images", images, "--detach").ShouldSucceed();
            Assert.Equal(target.Pid.ToString(CultureInfo.InvariantCulture), restored.LastStdoutLine);
            target.WaitForTicks(3);
        }
        target.StopAndVerify();
    }

    private static List<(int Pid, int Parent, int Group, int Session, char State)> Tree(int root)
    {
        var result = new List<(int, int, int, int, char)>();
        var queue = new Queue<int>([root]);
        while (queue.Count > 0)
        {
            int pid = queue.Dequeue();
            var stat = Amber.Kernel.Proc.ProcFs.ReadStat(pid);
            result.Add((pid, pid == root ? 0 : stat.ParentPid, stat.ProcessGroup, stat.Session, stat.State == 'S' || stat.State == 'R' ? 'S' : stat.State));
            foreach (int child in Amber.Kernel.Proc.ProcFs.ListChildren(pid))
                queue.Enqueue(child);
        }
        return [.. result.OrderBy(r => r.Item1)];
    }
}

/// <summary>A pipe between two processes of the tree, with bytes in flight: one pipe again, not two.</summary>
public sealed class PipelineTests
{
    [Fact]
    public void PipeBetweenSiblingsSurvivesTwoCycles()
    {
        using var dir = new TestDir("pipeline");
        using var target = TargetProcess.StartC("pipeline", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(10);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(5);
        }
        var inspect = AmberCli.Run("inspect", dir["img2"], "--json").ShouldSucceed();
        Assert.Contains("\"sharedPipes\"", inspect.Stdout);
        target.StopAndVerify();
    }
}

/// <summary>An open file shared by a parent and its child: one offset again after the restore, not two.</summary>
public sealed class SharedFileTests
{
    [Fact]
    public void InheritedFileKeepsOneOffsetOverTwoCycles()
    {
        using var dir = new TestDir("sharedlog");
        using var target = TargetProcess.StartC("sharedlog", dir);
        target.WaitForLine(l => l == "READY", "READY");
        target.WaitForTicks(5);
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointKillRestore(target, dir[$"img{cycle}"]);
            target.WaitForTicks(5);
        }
        var inspect = AmberCli.Run("inspect", dir["img2"], "--json").ShouldSucceed();
        Assert.Contains("\"sharedFiles\"", inspect.Stdout);
        target.StopAndVerify();
    }
}
