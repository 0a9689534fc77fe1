using System.Net.Sockets;
using System.Text;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>
/// The coordinator as a systemd service: the unit amber install-service writes passes
/// systemd-analyze verify, and the coordinator started as that unit starts it (amber daemon, with
/// systemd's $NOTIFY_SOCKET) says READY=1 once its control socket listens, STOPPING=1 on SIGTERM.
/// </summary>
public sealed class ServiceTests
{
    [Fact]
    public void TheUnitVerifiesAndTheCoordinatorNotifiesReadyOnceItListens()
    {
        using var home = new GroupHome("service");
        string units = home.Dir["units"];
        Directory.CreateDirectory(units);
        AmberCli.Run("install-service", "--unit-dir", units).ShouldSucceed();
        string unit = File.ReadAllText(Path.Combine(units, "amber.service"));
        Assert.Contains("Type=notify", unit, StringComparison.Ordinal);
        var verify = ExternalProgram.Run("/usr/bin/systemd-analyze", "verify", Path.Combine(units, "amber.service"));
        Assert.True(verify.ExitCode == 0 && verify.Stderr.Trim().Length == 0, $"systemd-analyze verify: {verify.Stderr}");
        string execStart = unit.Split('\n').Single(l => l.StartsWith("ExecStart=", StringComparison.Ordinal))["ExecStart=".Length..];
        Assert.EndsWith(" daemon", execStart, StringComparison.Ordinal);
        Assert.True(File.Exists(execStart[..^" daemon".Length]), execStart);

        // systemd's side: a datagram socket the service is told of.
        string notify = home.Dir["notify"];
        using var systemd = new Socket(AddressFamily.Unix, SocketType.Dgram, ProtocolType.Unspecified);
        systemd.Bind(new UnixDomainSocketEndPoint(notify));
        systemd.ReceiveTimeout = (int)TimeSpan.FromMinutes(3).TotalMilliseconds; // ./amber may build itself first
        var daemon = home.StartDaemon(new Dictionary<string, string> { ["NOTIFY_SOCKET"] = notify });
        var ready = Receive(systemd);
        Assert.Contains("READY=1", ready, StringComparison.Ordinal);
        Assert.Contains($"MAINPID={daemon.Pid}", ready, StringComparison.Ordinal);
        Assert.True(File.Exists(home.Home.ControlSocket), "READY came before the control socket listened");

        Spawner.Kill(daemon.Pid, 15);
        systemd.ReceiveTimeout = 30_000;
        Assert.Contains("STOPPING=1", Receive(systemd), StringComparison.Ordinal);
        Assert.Equal(0, daemon.Wait(TimeSpan.FromSeconds(30)).ExitCode);
    }

    /// <summary>
    /// amber install-service --agent: the node agent's unit, which systemd accepts, with the agent's
    /// command line quoted for it (a path with a space and a % in it), and which excludes the coordinator's.
    /// </summary>
    [Fact]
    public void TheAgentUnitVerifiesAndRunsTheAgentOfThisNode()
    {
        using var dir = new TestDir("agent-unit");
        string cluster = dir["clu ster 100%"], units = dir["units"];
        Directory.CreateDirectory(units);
        AmberCli.Run("cluster", "init", "--dir", cluster).ShouldSucceed();
        AmberCli.Run("install-service", "--agent", "--listen", "10.0.0.1:7411", "--cluster", cluster, "--node", "n1", "--unit-dir", units)
            .ShouldFail("n1.crt is missing");
        AmberCli.Run("node", "add", "n1", "--cluster", cluster).ShouldSucceed();
        AmberCli.Run("install-service", "--agent", "--cluster", cluster, "--node", "n1", "--unit-dir", units).ShouldBeUsageError("--listen");
        AmberCli.Run("install-service", "--listen", "10.0.0.1:7411", "--unit-dir", units).ShouldBeUsageError("--agent");
        AmberCli.Run("install-service", "--agent", "--listen", "10.0.0.1:7411", "--cluster", cluster, "--node", "n1", "--unit-dir", units).ShouldSucceed();
        string path = Path.Combine(units, "amber-agent.service");
        string unit = File.ReadAllText(path);
        Assert.Contains("Conflicts=amber.service", unit, StringComparison.Ordinal);
        var verify = ExternalProgram.Run("/usr/bin/systemd-analyze", "verify", path);
        Assert.True(verify.ExitCode == 0 && verify.Stderr.Trim().Length == 0, $"systemd-analyze verify: {verify.Stderr}");
        string execStart = unit.Split('\n').Single(l => l.StartsWith("ExecStart=", StringComparison.Ordinal))["ExecStart=".Length..];
        Assert.Contains($" agent --listen 10.0.0.1:7411 --cluster \"{cluster.Replace("%", "%%", StringComparison.Ordinal)}\" --node n1", execStart, StringComparison.Ordinal);

        // With the cluster's store: the agent's --etcd and --lease-ttl, checked first.
        AmberCli.Run("install-service", "--agent", "--listen", "10.0.0.1:7411", "--cluster", cluster, "--node", "n1", "--unit-dir", units, "--etcd", "http://10.0.0.2:2379")
            .ShouldBeUsageError("speak TLS only");
        AmberCli.Run("install-service", "--agent", "--listen", "10.0.0.1:7411", "--cluster", cluster, "--node", "n1", "--unit-dir", units, "--lease-ttl", "5")
            .ShouldBeUsageError("--lease-ttl goes with --etcd");
        AmberCli.Run("install-service", "--agent", "--listen", "10.0.0.1:7411", "--cluster", cluster, "--node", "n1", "--unit-dir", units,
            "--etcd", "https://10.0.0.2:2379,https://10.0.0.3:2379", "--lease-ttl", "5").ShouldSucceed();
        unit = File.ReadAllText(path);
        Assert.Contains(" --node n1 --etcd https://10.0.0.2:2379,https://10.0.0.3:2379 --lease-ttl 5", unit, StringComparison.Ordinal);
        verify = ExternalProgram.Run("/usr/bin/systemd-analyze", "verify", path);
        Assert.True(verify.ExitCode == 0 && verify.Stderr.Trim().Length == 0, $"systemd-analyze verify: {verify.Stderr}");
    }

    private static string Receive(Socket socket)
    {
        var buffer = new byte[4096];
        int n = socket.Receive(buffer);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }
}
