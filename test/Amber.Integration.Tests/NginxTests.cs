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
}
