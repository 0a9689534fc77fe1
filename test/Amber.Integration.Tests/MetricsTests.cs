using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>
/// The coordinator's Prometheus metrics (metricsAddress in its configuration): scraped over HTTP
/// while a group is checkpointed, merged and restarted after a failure, each counted where it belongs.
/// </summary>
public sealed class MetricsTests
{
    [Fact]
    public void TheMetricsEndpointCountsCheckpointsMergesAndRestarts()
    {
        using var home = new GroupHome("metrics");
        int port = FreePort();
        string config = home.Dir["amber.json"];
        File.WriteAllText(config, $$"""{ "metricsAddress": "127.0.0.1:{{port}}" }""");
        home.StartDaemon(new Dictionary<string, string> { ["AMBER_CONFIG"] = config });
        using var http = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/"), Timeout = TimeSpan.FromSeconds(10) };
        Dictionary<string, double> Scrape()
        {
            var response = http.GetAsync("metrics").GetAwaiter().GetResult();
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            // "name{labels} value" lines; comments (# HELP, # TYPE) aside.
            return response.Content.ReadAsStringAsync().GetAwaiter().GetResult().Split('\n')
                .Where(l => l.Length > 0 && l[0] != '#').Select(l => l.Split(' ')).ToDictionary(f => f[0], f => double.Parse(f[1], CultureInfo.InvariantCulture));
        }
        Assert.DoesNotContain(Scrape().Keys, k => k.StartsWith("amber_checkpoints_total", StringComparison.Ordinal));

        var (server, client) = GroupTests.StartDuo(home, "mx", ["--restart-on-failure"]);
        client.WaitForTicks(2);
        home.Amber("checkpoint", "--group", "mx").ShouldSucceed();
        home.Amber("checkpoint", "--group", "mx").ShouldSucceed();
        home.Amber("merge", "--group", "mx").ShouldSucceed();
        var after = Scrape();
        Assert.Equal(1, after["""amber_checkpoints_total{group="mx",kind="full"}"""]);
        Assert.Equal(1, after["""amber_checkpoints_total{group="mx",kind="incremental"}"""]);
        Assert.Equal(2, after["""amber_checkpoint_freeze_seconds_count{group="mx"}"""]);
        Assert.Equal(2, after["""amber_checkpoint_duration_seconds_count{group="mx"}"""]);
        Assert.InRange(after["""amber_checkpoint_freeze_seconds_sum{group="mx"}"""], 1e-6, after["""amber_checkpoint_duration_seconds_sum{group="mx"}"""]);
        Assert.True(after["""amber_checkpoint_bytes_written_total{group="mx"}"""] > 1 << 20); // the full one holds the client's heap
        Assert.True(after["""amber_checkpoint_pages_kept_total{group="mx"}"""] > 0);
        Assert.Equal(1, after["""amber_merges_total{group="mx"}"""]);
        // The merge removed ckpt-000001: the store holds one checkpoint, of the size its files have.
        Assert.Equal(1, after["""amber_store_checkpoints{group="mx"}"""]);
        long storeBytes = new DirectoryInfo(home.Home.DefaultStore("mx")).EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
        Assert.Equal(storeBytes, after["""amber_store_bytes{group="mx"}"""]);

        // A member killed: the group restarted from its checkpoint, counted as a restart and a restore.
        Spawner.Kill(client.Pid, 9);
        GroupHome.WaitUntil(() => Scrape().GetValueOrDefault("""amber_restarts_total{group="mx"}""") == 1, "the restart to be counted");
        Assert.Equal(1, Scrape()["""amber_restores_total{group="mx"}"""]);
        client.WaitForTicks(3);
        File.WriteAllText(home.Dir["stop"], "");
        client.WaitForPass();
        server.WaitForPass();
    }

    /// <summary>A port nothing listens on now, for the coordinator to take.</summary>
    private static int FreePort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        return ((IPEndPoint)probe.LocalEndpoint).Port;
    }
}
