using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>
/// nginx from Debian: a master (root) and two workers (nobody) sharing the listening socket, joined
/// by socketpair channels and shared memory. Checkpointed between requests, killed, restored: it
/// serves again, and still obeys its master's signals (reload with new workers).
/// </summary>
public sealed class NginxTests
{
    [Fact]
    public void NginxMasterAndWorkersServeAgainAndReload()
    {
        Assert.True(File.Exists("/usr/sbin/nginx"), "nginx is not installed (apt-get install nginx-light; .ci/run does it)");
        using var dir = new TestDir("nginx");
        Directory.CreateDirectory(dir["html"]);
        File.WriteAllText(dir["html/index.html"], "hello from nginx\n");
        int port = Http.FreePort();
        File.WriteAllText(dir["nginx.conf"], $$"""
            daemon off;
            master_process on;
            worker_processes 2;
            pid {{dir["nginx.pid"]}};
            error_log {{dir["error.log"]}};
            events { worker_connections 64; }
            http {
              access_log off;
              client_body_temp_path {{dir.Path}};
              server { listen 127.0.0.1:{{port}}; root {{dir["html"]}}; }
            }
            """);
        using var master = TargetProcess.Start("/usr/sbin/nginx", ["-c", dir["nginx.conf"], "-p", dir.Path], dir.Path);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (master.Tree().Count < 3 || !Http.TryGet(port, out _))
        {
            Assert.True(DateTime.UtcNow < deadline, "nginx did not start: " + (File.Exists(dir["error.log"]) ? File.ReadAllText(dir["error.log"]) : ""));
            Thread.Sleep(20);
        }
        var workers = master.Tree().Skip(1).ToList();
        for (int cycle = 1; cycle <= 2; cycle++)
        {
            var tree = master.Tree().Skip(1).ToList();
            Cycle.CheckpointWhenIdle(master, dir[$"img{cycle}"]);
            master.ReapKilled(tree);
            AmberCli.Run("restore", "--images", dir[$"img{cycle}"], "--detach").ShouldSucceed();
            Assert.Equal(workers, master.Tree().Skip(1).ToList());
            Assert.All(workers, w => Assert.Contains("\t65534\t", File.ReadAllLines($"/proc/{w}/status").Single(l => l.StartsWith("Uid:"))));
            for (int i = 0; i < 5; i++)
                Assert.True(Http.TryGet(port, out string body) && body == "hello from nginx\n", "nginx did not serve after the restore");
        }
        // The master still commands its workers: a reload replaces them, and the new ones serve.
        Spawner.Kill(master.Pid, 1);
        deadline = DateTime.UtcNow.AddSeconds(20);
        while (master.Tree().Skip(1).Intersect(workers).Any() || master.Tree().Count < 3)
        {
            Assert.True(DateTime.UtcNow < deadline, "nginx did not replace its workers on SIGHUP");
            Thread.Sleep(20);
        }
        Assert.True(Http.TryGet(port, out string after) && after == "hello from nginx\n");
        Spawner.Kill(master.Pid, 3); // SIGQUIT: graceful shutdown
        var status = Exited.Wait(master.Pid, TimeSpan.FromSeconds(20), "nginx master");
        master.MarkEnded();
        Assert.True(status.Exited && status.ExitCode == 0, $"nginx ended with {status}");
    }

    /// <summary>
    /// wrk's eight keep-alive connections (not checkpointed) load nginx's workers while master and
    /// workers are checkpointed, ended and restored: wrk sees a pause, no socket error and no other
    /// status than 200, and nginx's access log shows the same connections serving after the restore.
    /// </summary>
    [Fact]
    public void NginxKeepsWrksConnectionsThroughACheckpoint()
    {
        Assert.True(File.Exists("/usr/sbin/nginx"), "nginx is not installed (apt-get install nginx-light; .ci/run does it)");
        Assert.True(File.Exists("/usr/bin/wrk"), "wrk is not installed (apt-get install wrk)");
        using var dir = new TestDir("nginxwrk");
        Directory.CreateDirectory(dir["html"]);
        File.WriteAllText(dir["html/index.html"], "hello from nginx\n");
        int port = Http.FreePort();
        // Keep-alive connections that nginx never closes during the run: wrk makes no new ones.
        File.WriteAllText(dir["nginx.conf"], $$"""
            daemon off;
            master_process on;
            worker_processes 2;
            pid {{dir["nginx.pid"]}};
            error_log {{dir["error.log"]}};
            events { worker_connections 64; }
            http {
              log_format conn '$connection $connection_requests $msec $status';
              access_log {{dir["access.log"]}} conn;
              keepalive_requests 10000000;
              keepalive_timeout 300s;
              client_body_temp_path {{dir.Path}};
              server { listen 127.0.0.1:{{port}}; root {{dir["html"]}}; }
            }
            """);
        using var master = TargetProcess.Start("/usr/sbin/nginx", ["-c", dir["nginx.conf"], "-p", dir.Path], dir.Path);
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (master.Tree().Count < 3 || !Http.TryGet(port, out _))
        {
            Assert.True(DateTime.UtcNow < deadline, "nginx did not start: " + (File.Exists(dir["error.log"]) ? File.ReadAllText(dir["error.log"]) : ""));
            Thread.Sleep(20);
        }
        // --timeout: a request paused by the checkpoint is late, which wrk would count as an error after 2 s.
        using var wrk = TargetProcess.Start("/usr/bin/wrk", ["-c", "8", "-t", "2", "-d", "30s", "--timeout", "60s", $"http://127.0.0.1:{port}/"], dir.Path, logName: "wrk.log");
        deadline = DateTime.UtcNow.AddSeconds(30);
        while (Served(dir).Select(r => r.Connection).Distinct().Count() < 9) // Http.TryGet's and wrk's eight
        {
            Assert.True(DateTime.UtcNow < deadline && wrk.IsRunning, $"wrk did not open its connections: {File.ReadAllText(wrk.LogPath)}");
            Thread.Sleep(20);
        }
        Thread.Sleep(2000);

        var tree = master.Tree().Skip(1).ToList();
        AmberCli.Run("checkpoint", master.Pid.ToString(), "--images", dir["img"]).ShouldSucceed();
        master.ReapKilled(tree);
        NetworkLocks.AssertParked(port, dir["img"], atLeast: 8);
        var before = Served(dir);
        var connections = before.Select(r => r.Connection).ToHashSet();
        Thread.Sleep(1000);
        Assert.True(wrk.IsRunning, $"wrk ended while nginx was gone: {File.ReadAllText(wrk.LogPath)}");
        AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        master.Restored();
        NetworkLocks.AssertNoneHeld(port);

        var status = Exited.Wait(wrk.Pid, TimeSpan.FromSeconds(180), "wrk");
        wrk.MarkEnded();
        string output = File.ReadAllText(wrk.LogPath);
        Assert.True(status.Exited && status.ExitCode == 0, $"wrk ended with {status}: {output}");
        Assert.Contains("requests in ", output);
        Assert.DoesNotContain("Socket errors", output);
        Assert.DoesNotContain("Non-2xx", output);
        // After the restore the same eight connections served on, and nothing else but 200.
        var after = Served(dir).Skip(before.Count).ToList();
        Assert.All(Served(dir), r => Assert.Equal("200", r.Status));
        var afterConnections = after.Select(r => r.Connection).Distinct().ToList();
        Assert.True(after.Count >= 1000, $"only {after.Count} requests served after the restore: {output}");
        Assert.True(afterConnections.Count == 8 && afterConnections.All(connections.Contains),
            $"after the restore requests came on connections {string.Join(",", afterConnections)}; before on {string.Join(",", connections)}");
        Assert.True(master.Tree().Count == 3, "nginx lost a worker");
        Spawner.Kill(master.Pid, 3); // SIGQUIT: graceful shutdown
        var ended = Exited.Wait(master.Pid, TimeSpan.FromSeconds(20), "nginx master");
        master.MarkEnded();
        Assert.True(ended.Exited && ended.ExitCode == 0, $"nginx ended with {ended}");
    }

    /// <summary>The requests of the access log so far (format conn: connection, its request number, time, status).</summary>
    private static List<(string Connection, string Status)> Served(TestDir dir)
    {
        if (!File.Exists(dir["access.log"]))
            return [];
        string text = File.ReadAllText(dir["access.log"]);
        return [.. text[..(text.LastIndexOf('\n') + 1)].Split('\n', StringSplitOptions.RemoveEmptyEntries)
            .Select(l => l.Split(' ')).Select(f => (f[0], f[3]))];
    }
}
