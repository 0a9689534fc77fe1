namespace Amber.Integration.Tests.Infrastructure;

/// <summary>The zdtm shape: checkpoint (ending the process) → reap → restore with the same PID.</summary>
public static class Cycle
{
    /// <summary>
    /// A server whose client just left may hold the server side of that connection for a moment,
    /// which a checkpoint refuses (its peer is outside, or the connection is closing): try again.
    /// </summary>
    public static void CheckpointWhenIdle(TargetProcess server, string images)
    {
        for (int attempt = 0; ; attempt++)
        {
            var run = AmberCli.Run("checkpoint", server.Pid.ToString(), "--images", images);
            if (run.ExitCode == 0)
                return;
            bool transient = run.Stderr.Contains("TCP connection") || run.Stderr.Contains("connected to a socket outside");
            Assert.True(attempt < 20 && transient, $"checkpoint failed: {run.Stderr}");
            Assert.True(server.IsRunning && !server.IsTraced, "a refused checkpoint must leave the server running untraced");
            Thread.Sleep(50);
        }
    }

    public static void CheckpointKillRestore(TargetProcess target, string images, int? stdinFd = null, params string[] restoreArgs) =>
        CheckpointKillRestore(target, images, stdinFd, restoreArgs, meanwhile: null);

    /// <param name="meanwhile">Done while the processes are gone, between the checkpoint and the restore.</param>
    public static void CheckpointKillRestore(TargetProcess target, string images, int? stdinFd, string[] restoreArgs, Action? meanwhile)
    {
        var tree = target.Tree().Skip(1).ToList();
        AmberCli.Run("checkpoint", target.Pid.ToString(), "--images", images).ShouldSucceed();
        Assert.True(Directory.Exists(images));
        target.ReapKilled(tree);
        meanwhile?.Invoke();
        var restored = AmberCli.Run(["restore", "--images", images, "--detach", .. restoreArgs], stdinFd).ShouldSucceed();
        Assert.Equal(target.Pid.ToString(), restored.LastStdoutLine);
        Assert.True(target.IsRunning, $"restored process {target.Pid} is not running: {(target.IsRunning ? "" : target.HowItEnded())}");
        Assert.False(target.IsTraced, $"restored process {target.Pid} is still traced");
    }
}
