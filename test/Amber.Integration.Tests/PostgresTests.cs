namespace Amber.Integration.Tests;

/// <summary>
/// PostgreSQL 15: a cluster made by initdb, holding a table, checkpointed while idle — postmaster
/// and background processes (user postgres), System V and shared anonymous memory, the postmaster
/// death pipe, TCP and unix listening sockets — killed, restored: same data, new writes work, and
/// no crash recovery in its log.
/// </summary>
public sealed class PostgresTests
{
    private const string Bin = "/usr/lib/postgresql/15/bin";

    [Fact]
    public void PostgresServesTheSameDataWithoutCrashRecovery()
    {
        Assert.True(File.Exists($"{Bin}/postgres"), "PostgreSQL 15 is not installed (apt-get install postgresql; .ci/run does it)");
        using var dir = new TestDir("postgres");
        File.SetUnixFileMode(dir.Path, (UnixFileMode)0x1ff);
        string data = dir["data"];
        ExternalProgram.Run("/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
            $"{Bin}/initdb", "-D", data, "-A", "trust", "-U", "postgres").ShouldSucceed();
        string port = (15400 + Random.Shared.Next(500)).ToString();
        using var postmaster = TargetProcess.Start("/usr/bin/setpriv",
            ["--reuid=postgres", "--regid=postgres", "--init-groups", $"{Bin}/postgres", "-D", data, "-p", port, "-k", dir.Path,
             "-c", "listen_addresses=127.0.0.1"], dir.Path);
        postmaster.WaitForLine(l => l.Contains("database system is ready to accept connections"), "'ready to accept connections'", TimeSpan.FromSeconds(60));
        Sql(port, dir.Path, "create table t(x int); insert into t select generate_series(1, 5000);");
        string expected = Sql(port, dir.Path, "select count(*), sum(x) from t");
        Assert.Equal("5000|12502500", expected);

        for (int cycle = 1; cycle <= 2; cycle++)
        {
            var tree = postmaster.Tree().Skip(1).ToList();
            Assert.True(tree.Count >= 4, "postgres should have its background processes");
            Cycle.CheckpointWhenIdle(postmaster, dir[$"img{cycle}"]);
            postmaster.ReapKilled(tree);
            AmberCli.Run("restore", "--images", dir[$"img{cycle}"], "--detach").ShouldSucceed();
            Assert.Equal(expected, Sql(port, dir.Path, "select count(*), sum(x) from t"));
            Sql(port, dir.Path, $"insert into t values ({cycle})");
            expected = Sql(port, dir.Path, "select count(*), sum(x) from t");
        }
        string log = File.ReadAllText(postmaster.LogPath);
        Assert.DoesNotContain("was interrupted", log);
        Assert.DoesNotContain("redo starts", log);
        Assert.DoesNotContain("terminated by signal", log);
        Amber.Kernel.Processes.Spawner.Kill(postmaster.Pid, 2); // SIGINT: fast shutdown
        var status = Exited.Wait(postmaster.Pid, TimeSpan.FromSeconds(30), "postmaster");
        postmaster.MarkEnded();
        Assert.True(status.Exited && status.ExitCode == 0, $"postgres ended with {status}");
    }

    private static string Sql(string port, string socketDir, string sql) =>
        ExternalProgram.Run("/usr/bin/psql", "-h", socketDir, "-p", port, "-U", "postgres", "-tAc", sql).ShouldSucceed().Stdout.Trim();
}
