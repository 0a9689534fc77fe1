using System.Globalization;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>
/// A real etcd (Debian's etcd-server), one member or several, for the cluster's store: each on an
/// address of the test's own bridge (which it adds to the bridge, so the nodes' namespaces reach it and
/// so does the test), its client port TLS only, with a certificate of the cluster's CA (amber node add
/// etcd) and the nodes' certificates required of clients. Its data in memory (/dev/shm: the suite's
/// checkpoints keep the disk busy, and an fsync of etcd's log waiting behind them stalled it for
/// longer than a lease); <see cref="Stop()"/> and <see cref="Start"/> again keep them. Dispose kills it,
/// removes its data and takes the addresses away.
/// </summary>
public sealed class TestEtcd : IDisposable
{
    private readonly string _dir;
    private readonly string _data = Path.Combine("/dev/shm", $"amber-etcd-{Guid.NewGuid():N}");
    private readonly string _cluster;
    private readonly string _bridge;
    private readonly IReadOnlyList<string> _addresses; // with their prefix length
    private readonly TargetProcess?[] _members;
    private int _starts;

    /// <param name="dir">Where its logs go.</param>
    /// <param name="cluster">The cluster's directory (its CA; etcd's certificate is made there).</param>
    /// <param name="bridge">The bridge its addresses are added to.</param>
    /// <param name="addresses">One per member, with the prefix length.</param>
    public TestEtcd(string dir, string cluster, string bridge, IReadOnlyList<string> addresses)
    {
        _dir = Directory.CreateDirectory(dir).FullName;
        _cluster = cluster;
        _bridge = bridge;
        _addresses = addresses;
        _members = new TargetProcess?[addresses.Count];
        AmberCli.Run("node", "add", "etcd", "--cluster", cluster).ShouldSucceed();
        foreach (string address in addresses)
            ExternalProgram.Run("/usr/sbin/ip", "address", "add", address, "dev", bridge).ShouldSucceed();
        Start();
    }

    private string Host(int member) => _addresses[member].Split('/')[0];

    private string ClientUrl(int member) => $"https://{Host(member)}:2379";

    private string PeerUrl(int member) => $"http://{Host(member)}:2380";

    /// <summary>Its members' client URLs, for --etcd.</summary>
    public string Url => string.Join(',', Enumerable.Range(0, _members.Length).Select(ClientUrl));

    public bool IsRunning => _members.Any(m => m?.IsRunning == true);

    /// <summary>Starts every member that is not running (again, on its data), and waits until each serves clients.</summary>
    public void Start()
    {
        string cluster = string.Join(',', Enumerable.Range(0, _members.Length).Select(i => $"m{i}={PeerUrl(i)}"));
        int start = ++_starts;
        // All at once: a member of several serves only once a quorum of them is up.
        var started = new List<TargetProcess>();
        for (int i = 0; i < _members.Length; i++)
        {
            if (_members[i]?.IsRunning == true)
                continue;
            _members[i]?.Dispose();
            _members[i] = TargetProcess.Start("/usr/bin/etcd", [
                "--name", $"m{i}", "--data-dir", Path.Combine(_data, $"m{i}"),
                "--listen-client-urls", ClientUrl(i), "--advertise-client-urls", ClientUrl(i),
                "--listen-peer-urls", PeerUrl(i), "--initial-advertise-peer-urls", PeerUrl(i), "--initial-cluster", cluster,
                "--cert-file", Path.Combine(_cluster, "etcd.crt"), "--key-file", Path.Combine(_cluster, "etcd.key"),
                "--client-cert-auth", "--trusted-ca-file", Path.Combine(_cluster, "ca.crt")], _dir, logName: $"etcd-m{i}-{start}.log");
            started.Add(_members[i]!);
        }
        foreach (var member in started)
            member.WaitForLine(l => l.Contains("serving client requests on", StringComparison.Ordinal), "etcd to serve its clients");
    }

    /// <summary>Kills every member (their data stays).</summary>
    public void Stop()
    {
        for (int i = 0; i < _members.Length; i++)
            Stop(i);
    }

    /// <summary>Kills member <paramref name="member"/> (its data stays; the others serve on if they are a quorum).</summary>
    public void Stop(int member)
    {
        if (_members[member] is { IsRunning: true } etcd)
        {
            Spawner.Kill(etcd.Pid, 9);
            GroupHome.WaitUntil(() => !etcd.IsRunning, "etcd to end");
        }
    }

    public void Dispose()
    {
        Stop();
        foreach (var member in _members)
            member?.Dispose();
        try
        {
            Directory.Delete(_data, recursive: true);
        }
        catch (DirectoryNotFoundException)
        {
        }
        foreach (string address in _addresses)
            ExternalProgram.Run("/usr/sbin/ip", "address", "delete", address, "dev", _bridge);
    }

    /// <summary>
    /// Who leads <paramref name="election"/> as etcd's own election API says (its leader's value), asked
    /// of a running member with the etcd certificate; null if none leads.
    /// </summary>
    public string? ElectionLeader(string election)
    {
        int member = Array.FindIndex(_members, m => m?.IsRunning == true);
        Assert.True(member >= 0, "no etcd member runs");
        using var handler = new HttpClientHandler { ServerCertificateCustomValidationCallback = HttpClientHandler.DangerousAcceptAnyServerCertificateValidator };
        handler.ClientCertificates.Add(X509Certificate2.CreateFromPemFile(Path.Combine(_cluster, "etcd.crt"), Path.Combine(_cluster, "etcd.key")));
        using var http = new HttpClient(handler) { Timeout = TimeSpan.FromSeconds(10) };
        string body = JsonSerializer.Serialize(new Dictionary<string, string> { ["name"] = Convert.ToBase64String(Encoding.UTF8.GetBytes(election)) });
        using var response = http.PostAsync($"{ClientUrl(member)}/v3/election/leader", new StringContent(body, Encoding.UTF8, "application/json")).GetAwaiter().GetResult();
        using var answer = JsonDocument.Parse(response.Content.ReadAsStringAsync().GetAwaiter().GetResult());
        if (answer.RootElement.TryGetProperty("kv", out var kv))
            return Encoding.UTF8.GetString(Convert.FromBase64String(kv.GetProperty("value").GetString()!));
        Assert.Contains("no leader", answer.RootElement.GetRawText(), StringComparison.Ordinal);
        return null;
    }

    public override string ToString() => string.Create(CultureInfo.InvariantCulture, $"etcd at {Url}");
}
