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

    private static string Receive(Socket socket)
    {
        var buffer = new byte[4096];
        int n = socket.Receive(buffer);
        return Encoding.UTF8.GetString(buffer, 0, n);
    }
}
