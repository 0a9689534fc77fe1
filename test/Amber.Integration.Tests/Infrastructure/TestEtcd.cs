using System.Globalization;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>
/// A real etcd (Debian's etcd-server), one member, for the cluster's store: on an address of the
/// test's own bridge (which it adds to the bridge, so the nodes' namespaces reach it and so does the
/// test), its client port TLS only, with a certificate of the cluster's CA (amber node add etcd)
/// and the nodes' certificates required of clients. Its data in memory (/dev/shm: the suite's
/// checkpoints keep the disk busy, and an fsync of etcd's log waiting behind them stalled it for
/// longer than a lease); <see cref="Stop"/> and <see cref="Start"/> again keep them. Dispose kills it,
/// removes its data and takes the address away.
/// </summary>
public sealed class TestEtcd : IDisposable
{
    private readonly string _dir;
    private readonly string _data = Path.Combine("/dev/shm", $"amber-etcd-{Guid.NewGuid():N}");
    private readonly string _cluster;
    private readonly string _bridge;
    private readonly string _address; // with its prefix length
    private TargetProcess? _etcd;
    private int _starts;

    public TestEtcd(string dir, string cluster, string bridge, string address)
    {
        _dir = Directory.CreateDirectory(dir).FullName;
        _cluster = cluster;
        _bridge = bridge;
        _address = address;
        AmberCli.Run("node", "add", "etcd", "--cluster", cluster).ShouldSucceed();
        ExternalProgram.Run("/usr/sbin/ip", "address", "add", address, "dev", bridge).ShouldSucceed();
        Start();
    }

    private string Host => _address.Split('/')[0];

    /// <summary>Its client URL, for --etcd.</summary>
    public string Url => $"https://{Host}:2379";

    public bool IsRunning => _etcd?.IsRunning == true;

    /// <summary>Starts it (again) on its data, and waits until it serves clients.</summary>
    public void Start()
    {
        Assert.False(IsRunning, "etcd runs already");
        _etcd?.Dispose();
        string peer = $"http://{Host}:2380";
        _etcd = TargetProcess.Start("/usr/bin/etcd", [
            "--name", "store", "--data-dir", _data,
            "--listen-client-urls", Url, "--advertise-client-urls", Url,
            "--listen-peer-urls", peer, "--initial-advertise-peer-urls", peer, "--initial-cluster", $"store={peer}",
            "--cert-file", Path.Combine(_cluster, "etcd.crt"), "--key-file", Path.Combine(_cluster, "etcd.key"),
            "--client-cert-auth", "--trusted-ca-file", Path.Combine(_cluster, "ca.crt")], _dir, logName: $"etcd-{++_starts}.log");
        _etcd.WaitForLine(l => l.Contains("serving client requests on", StringComparison.Ordinal), "etcd to serve its clients");
    }

    /// <summary>Kills it (its data stays).</summary>
    public void Stop()
    {
        if (_etcd is { IsRunning: true } etcd)
        {
            Spawner.Kill(etcd.Pid, 9);
            GroupHome.WaitUntil(() => !etcd.IsRunning, "etcd to end");
        }
    }

    public void Dispose()
    {
        Stop();
        _etcd?.Dispose();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
        ExternalProgram.Run("/usr/sbin/ip", "address", "delete", _address, "dev", _bridge);
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"etcd at {Url}");
}
