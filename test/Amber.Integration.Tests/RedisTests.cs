
namespace Amber.Integration.Tests;

/// <summary>
/// redis-server from Debian, loaded by redis-benchmark, checkpointed, killed and restored: every key
/// and value back (the server's own digest of its dataset), and answering redis-benchmark again.
/// </summary>
public sealed class RedisTests
{
    [Fact]
    public void RedisKeepsItsDataAndServesAgain()
    {
        Assert.True(File.Exists("/usr/bin/redis-server"), "redis-server is not installed (apt-get install redis-server; .ci/run does it)");
        using var dir = new TestDir("redis");
        string port = Http.FreePort().ToString();
        using var redis = TargetProcess.Start("/usr/bin/redis-server",
            ["--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", dir.Path,
             "--enable-debug-command", "yes", "--daemonize", "no"], dir.Path);
        redis.WaitForLine(l => l.Contains("Ready to accept connections"), "'Ready to accept connections'");
        ExternalProgram.Run("/usr/bin/redis-benchmark", "-p", port, "-t", "set,lpush", "-n", "20000", "-r", "5000", "-d", "48", "-q").ShouldSucceed();
        string digest = Cli(port, "DEBUG", "DIGEST");
        string size = Cli(port, "DBSIZE");
        Assert.NotEqual("0", size);

        for (int cycle = 1; cycle <= 2; cycle++)
        {
            Cycle.CheckpointWhenIdle(redis, dir[$"img{cycle}"]);
            redis.ReapKilled();
            var restored = AmberCli.Run("restore", "--images", dir[$"img{cycle}"], "--detach").ShouldSucceed();
            Assert.Equal(redis.Pid.ToString(), restored.LastStdoutLine);
            Assert.Equal(size, Cli(port, "DBSIZE"));
            Assert.Equal(digest, Cli(port, "DEBUG", "DIGEST"));
            ExternalProgram.Run("/usr/bin/redis-benchmark", "-p", port, "-t", "get,set", "-n", "5000", "-r", "5000", "-d", "48", "-q").ShouldSucceed();
            digest = Cli(port, "DEBUG", "DIGEST");
            size = Cli(port, "DBSIZE");
        }
    }

    private static string Cli(string port, params string[] command) =>
        ExternalProgram.Run("/usr/bin/redis-cli", ["-p", port, .. command]).ShouldSucceed().Stdout.Trim();
}
