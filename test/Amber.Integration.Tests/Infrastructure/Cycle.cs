namespace Amber.Integration.Tests.Infrastructure;

/// <summary>The zdtm shape: checkpoint (ending the process) → reap → restore with the same PID.</summary>
public static class Cycle
{
    public static void CheckpointKillRestore(TargetProcess target, string images, int? stdinFd = null, params string[] restoreArgs)
    {
        var tree = target.Tree().Skip(1).ToList();
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", images).ShouldSucceed();
        Assert.True(Directory.Exists(images));
        target.ReapKilled(tree);
        var restored = AmberCli.Run(["restore", "--images", images, "--detach", .. restoreArgs], stdinFd).ShouldSucceed();
        Assert.Equal(target.Pid.ToString(), restored.LastStdoutLine);
        Assert.True(target.IsRunning, $"restored process {target.Pid} is not running");
        Assert.False(target.IsTraced, $"restored process {target.Pid} is still traced");
    }
}
