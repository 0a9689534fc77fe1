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

    /// <summary>
    /// pgbench (TPC-B-like transactions on four TCP connections, not checkpointed) runs while the whole
    /// server — postmaster, its four backends in the middle of transactions, background processes — is
    /// checkpointed, ended and restored: pgbench sees a pause, ends with exit 0 and no failed
    /// transaction, and the server log shows no crash recovery.
    /// </summary>
    [Fact]
    public void PgbenchRunsThroughACheckpointWithoutAFailedTransaction()
    {
        Assert.True(File.Exists($"{Bin}/pgbench"), "pgbench is not installed (apt-get install postgresql-15)");
        using var dir = new TestDir("pgbench");
        File.SetUnixFileMode(dir.Path, (UnixFileMode)0x1ff);
        string data = dir["data"];
        ExternalProgram.Run("/usr/bin/setpriv", "--reuid=postgres", "--regid=postgres", "--init-groups",
            $"{Bin}/initdb", "-D", data, "-A", "trust", "-U", "postgres").ShouldSucceed();
        int port = 15400 + Random.Shared.Next(500);
        using var postmaster = TargetProcess.Start("/usr/bin/setpriv",
            ["--reuid=postgres", "--regid=postgres", "--init-groups", $"{Bin}/postgres", "-D", data, "-p", port.ToString(), "-k", dir.Path,
             "-c", "listen_addresses=127.0.0.1"], dir.Path);
        postmaster.WaitForLine(l => l.Contains("database system is ready to accept connections"), "'ready to accept connections'", TimeSpan.FromSeconds(60));
        ExternalProgram.Start($"{Bin}/pgbench", ["-i", "-s", "2", "-h", "127.0.0.1", "-p", port.ToString(), "-U", "postgres", "postgres"])
            .Wait(TimeSpan.FromMinutes(3)).ShouldSucceed();

        using var pgbench = TargetProcess.Start($"{Bin}/pgbench",
            ["-h", "127.0.0.1", "-p", port.ToString(), "-U", "postgres", "-c", "4", "-j", "2", "-T", "20", "-P", "1", "postgres"], dir.Path, logName: "pgbench.log");
        pgbench.WaitForLine(l => l.StartsWith("progress: 3.0 s", StringComparison.Ordinal), "pgbench's progress at 3 s", TimeSpan.FromSeconds(60));
        var tree = postmaster.Tree().Skip(1).ToList();
        Assert.True(tree.Count >= 8, $"postgres should have its background processes and four backends: {tree.Count}");
        AmberCli.Run("checkpoint", postmaster.Pid.ToString(), "--images", dir["img"]).ShouldSucceed();
        postmaster.ReapKilled(tree);
        NetworkLocks.AssertParked(port, dir["img"], atLeast: 4);
        Thread.Sleep(1000);
        Assert.True(pgbench.IsRunning, $"pgbench ended while the server was gone: {string.Join(" | ", pgbench.Lines().TakeLast(5))}");
        string logAtCheckpoint = File.ReadAllText(postmaster.LogPath);
        AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        postmaster.Restored();
        NetworkLocks.AssertNoneHeld(port);

        var status = Exited.Wait(pgbench.Pid, TimeSpan.FromSeconds(240), "pgbench");
        pgbench.MarkEnded();
        string output = File.ReadAllText(pgbench.LogPath);
        Assert.True(status.Exited && status.ExitCode == 0, $"pgbench ended with {status}: {output}");
        Assert.Contains("number of failed transactions: 0 ", output);
        Assert.DoesNotContain("aborted", output);
        Assert.DoesNotContain("error", output, StringComparison.OrdinalIgnoreCase);
        // The transactions went on after the restore: progress lines past the checkpoint with work done.
        var progress = pgbench.Lines().Where(l => l.StartsWith("progress: ", StringComparison.Ordinal)).ToList();
        Assert.True(progress.Count(l => !l.Contains(" 0.0 tps", StringComparison.Ordinal)) >= 6, $"pgbench did little work: {string.Join(" | ", progress)}");

        string log = File.ReadAllText(postmaster.LogPath);
        string sinceRestore = log[Math.Min(logAtCheckpoint.Length, log.Length)..];
        Assert.DoesNotContain("not properly shut down", log);
        Assert.DoesNotContain("was interrupted", log);
        Assert.DoesNotContain("redo starts", log);
        Assert.DoesNotContain("terminated by signal", log);
        Assert.DoesNotContain("FATAL", sinceRestore);
        Assert.Equal("200000", Sql(port.ToString(), dir.Path, "select count(*) from pgbench_accounts"));
        Amber.Kernel.Processes.Spawner.Kill(postmaster.Pid, 2); // SIGINT: fast shutdown
        var ended = Exited.Wait(postmaster.Pid, TimeSpan.FromSeconds(60), "postmaster");
        postmaster.MarkEnded();
        Assert.True(ended.Exited && ended.ExitCode == 0, $"postgres ended with {ended}");
    }

    private static string Sql(string port, string socketDir, string sql) =>
        ExternalProgram.Run("/usr/bin/psql", "-h", socketDir, "-p", port, "-U", "postgres", "-tAc", sql).ShouldSucceed().Stdout.Trim();
}
