using System.Net;
using Amber.Coordinator.Groups;
using Prometheus;

namespace Amber.Coordinator.Monitoring;

/// <summary>
/// What the coordinator counts, per group, for Prometheus (prometheus-net): checkpoints taken and
/// failed, their freeze and total durations, bytes written and pages kept, merges, retention
/// removals, restores, restarts on failure, and each store's size (read when scraped). Kept in a
/// registry of its own; served at http://ADDRESS/metrics when the configuration names an address.
/// </summary>
public sealed class CoordinatorMetrics : IDisposable
{
    private readonly CollectorRegistry _registry = Metrics.NewCustomRegistry();
    private readonly Counter _checkpoints, _checkpointFailures, _bytesWritten, _pagesWritten, _pagesKept, _merges, _mergeFailures,
        _retentionRemoved, _restores, _restoreFailures, _restarts;
    private readonly Histogram _freeze, _total;
    private readonly Gauge _storeBytes, _storeCheckpoints;
    private MetricServer? _server;

    public CoordinatorMetrics(GroupSet groups)
    {
        var factory = Metrics.WithCustomRegistry(_registry);
        string[] group = ["group"];
        Counter Count(string name, string help, params string[] labels) => factory.CreateCounter(name, help, labels.Length > 0 ? labels : group);
        _checkpoints = Count("amber_checkpoints_total", "Checkpoints taken, by group and kind (full, incremental)", "group", "kind");
        _checkpointFailures = Count("amber_checkpoint_failures_total", "Checkpoints that failed (the group ran on as before)");
        _bytesWritten = Count("amber_checkpoint_bytes_written_total", "Bytes checkpoints wrote into the store");
        _pagesWritten = Count("amber_checkpoint_pages_written_total", "Memory pages checkpoints wrote");
        _pagesKept = Count("amber_checkpoint_pages_kept_total", "Memory pages incremental checkpoints left where an earlier one stored them");
        _merges = Count("amber_merges_total", "Chains folded into full checkpoints");
        _mergeFailures = Count("amber_merge_failures_total", "Merges that failed");
        _retentionRemoved = Count("amber_retention_removed_total", "Checkpoints the retention policy removed");
        _restores = Count("amber_restores_total", "Restores of the group, asked for or after a failure");
        _restoreFailures = Count("amber_restore_failures_total", "Restores that failed");
        _restarts = Count("amber_restarts_total", "Restarts on failure: the group restored after a member died");
        // 1 ms to ~33 s: a freeze is milliseconds, a checkpoint of gigabytes seconds.
        var buckets = Histogram.ExponentialBuckets(0.001, 2, 16);
        _freeze = factory.CreateHistogram("amber_checkpoint_freeze_seconds", "How long each checkpoint kept the group frozen",
            new HistogramConfiguration { LabelNames = group, Buckets = buckets });
        _total = factory.CreateHistogram("amber_checkpoint_duration_seconds", "How long each checkpoint took, start to committed",
            new HistogramConfiguration { LabelNames = group, Buckets = buckets });
        _storeBytes = factory.CreateGauge("amber_store_bytes", "Bytes of the group's store (checkpoints, and what is being written)", group);
        _storeCheckpoints = factory.CreateGauge("amber_store_checkpoints", "Checkpoints in the group's store", group);
        _registry.AddBeforeCollectCallback(() =>
        {
            foreach (var g in groups.All())
            {
                var (bytes, checkpoints) = StoreSize(g.Store.Directory);
                _storeBytes.WithLabels(g.Config.Name).Set(bytes);
                _storeCheckpoints.WithLabels(g.Config.Name).Set(checkpoints);
            }
        });
    }

    /// <summary>Serves the metrics at http://<paramref name="address"/>/metrics until disposed.</summary>
    public void Serve(IPEndPoint address)
    {
        string host = address.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6 ? $"[{address.Address}]" : address.Address.ToString();
        _server = new MetricServer(host, address.Port, "metrics/", _registry);
        _server.Start();
    }

    public void CheckpointTaken(string group, bool incremental, double frozenMs, double totalMs, long bytes, long pages, long pagesKept)
    {
        _checkpoints.WithLabels(group, incremental ? "incremental" : "full").Inc();
        _freeze.WithLabels(group).Observe(frozenMs / 1000);
        _total.WithLabels(group).Observe(totalMs / 1000);
        _bytesWritten.WithLabels(group).Inc(bytes);
        _pagesWritten.WithLabels(group).Inc(pages);
        _pagesKept.WithLabels(group).Inc(pagesKept);
    }

    public void CheckpointFailed(string group) => _checkpointFailures.WithLabels(group).Inc();

    public void Merged(string group, bool ok) => (ok ? _merges : _mergeFailures).WithLabels(group).Inc();

    public void RetentionRemoved(string group, int checkpoints) => _retentionRemoved.WithLabels(group).Inc(checkpoints);

    public void Restored(string group, bool ok) => (ok ? _restores : _restoreFailures).WithLabels(group).Inc();

    public void Restarted(string group) => _restarts.WithLabels(group).Inc();

    public void Dispose() => _server?.Dispose();

    /// <summary>The bytes of the files under the store, and how many of its directories are checkpoints (have a manifest).</summary>
    private static (long Bytes, int Checkpoints) StoreSize(string store)
    {
        try
        {
            var root = new DirectoryInfo(store);
            if (!root.Exists)
                return (0, 0);
            long bytes = root.EnumerateFiles("*", SearchOption.AllDirectories).Sum(f => f.Length);
            int checkpoints = root.EnumerateDirectories().Count(d => Image.CheckpointStore.IsCommitted(d.FullName));
            return (bytes, checkpoints);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            return (0, 0); // a directory removed while it was walked: counted at the next scrape
        }
    }
}
