using System.Globalization;
using System.Net;
using System.Text.Json;

namespace Amber.Coordinator;

/// <summary>
/// The coordinator's configuration file: /etc/amber/amber.json, or the file $AMBER_CONFIG names. The
/// defaults a new group takes for what `amber run` does not say: where its store goes
/// (<c>storeRoot</c>/NAME), its schedule, deadline, merge policy, retention, compression, restart on failure;
/// and where the coordinator serves its metrics.
/// Read once when the coordinator starts; a key it does not know, or a value that cannot be, stops it
/// with one line naming them, never silently ignored.
/// </summary>
public sealed record CoordinatorConfig
{
    public const string DefaultPath = "/etc/amber/amber.json";
    public const string PathVariable = "AMBER_CONFIG";

    /// <summary>A new group's store is this directory's NAME (default: the home's groups/NAME/images).</summary>
    public string? StoreRoot { get; init; }

    public double? EverySeconds { get; init; }

    public double? DeadlineSeconds { get; init; }

    public int? MergeAfter { get; init; }

    public long? MergeAboveBytes { get; init; }

    public string? Compress { get; init; }

    public bool? RestartOnFailure { get; init; }

    /// <summary>Retention: a new group keeps its latest this many checkpoints.</summary>
    public int? KeepLast { get; init; }

    /// <summary>Retention: a new group keeps the checkpoints of its last this many seconds.</summary>
    public double? KeepForSeconds { get; init; }

    /// <summary>Where the coordinator serves its Prometheus metrics (/metrics): a loopback address and port; null: not served.</summary>
    public IPEndPoint? MetricsAddress { get; init; }

    /// <summary>The bridge groups with an address of their own (amber run --net bridge) are attached to (default amber0).</summary>
    public string? Bridge { get; init; }

    /// <summary>The IPv4 subnet a group's address comes from when amber run gives none (default 10.177.0.0/16); its first address is the bridge's.</summary>
    public string? AddressPool { get; init; }

    /// <summary>Where it was read from; null when there is no file (every default built in).</summary>
    public string? Path { get; init; }


    /// <summary>The file $AMBER_CONFIG names (which must exist), else /etc/amber/amber.json if there is one.</summary>
    public static CoordinatorConfig Load()
    {
        string? named = Environment.GetEnvironmentVariable(PathVariable);
        string path = string.IsNullOrEmpty(named) ? DefaultPath : named;
        if (!File.Exists(path))
            return named is { Length: > 0 } ? throw new IOException($"{PathVariable} names {path}, which does not exist") : new CoordinatorConfig();
        try
        {
            using var document = JsonDocument.Parse(File.ReadAllText(path), new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
            return Parse(document.RootElement, path);
        }
        catch (JsonException e)
        {
            throw new IOException($"{path} is not JSON: {e.Message}", e);
        }
    }

    private static CoordinatorConfig Parse(JsonElement root, string path)
    {
        if (root.ValueKind != JsonValueKind.Object)
            throw new IOException($"{path}: expected an object of settings");
        var config = new CoordinatorConfig { Path = path };
        foreach (var p in root.EnumerateObject())
        {
            string where = $"{path}: \"{p.Name}\"";
            config = p.Name switch
            {
                "storeRoot" => config with { StoreRoot = FullPath(p.Value, where) },
                "everySeconds" => config with { EverySeconds = Interval(p.Value, where) },
                "deadlineSeconds" => config with { DeadlineSeconds = Interval(p.Value, where) },
                "mergeAfter" => config with { MergeAfter = p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out int n) && n >= 1 ? n : throw Bad(where, "a number of checkpoints, 1 or more") },
                "mergeAboveBytes" => config with { MergeAboveBytes = p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt64(out long b) && b >= 1 ? b : throw Bad(where, "a size in bytes, 1 or more") },
                "keepLast" => config with { KeepLast = p.Value.ValueKind == JsonValueKind.Number && p.Value.TryGetInt32(out int k) && k >= 1 ? k : throw Bad(where, "a number of checkpoints, 1 or more") },
                "keepForSeconds" => config with { KeepForSeconds = Interval(p.Value, where) },
                "compress" => config with { Compress = p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() is "none" or "zstd" or "lz4" ? p.Value.GetString() : throw Bad(where, "none, zstd or lz4") },
                "restartOnFailure" => config with { RestartOnFailure = p.Value.ValueKind is JsonValueKind.True or JsonValueKind.False ? p.Value.GetBoolean() : throw Bad(where, "true or false") },
                "metricsAddress" => config with { MetricsAddress = Loopback(p.Value, where) },
                "bridge" => config with { Bridge = p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() is { } b && Checkpoint.Resources.Isolation.NetworkRestorer.IsInterfaceName(b) ? b : throw Bad(where, "an interface name (at most 15 letters, digits, '_', '.', '-')") },
                "addressPool" => config with { AddressPool = p.Value.ValueKind == JsonValueKind.String && p.Value.GetString() is { } pool && Groups.GroupNetwork.PoolProblem(pool) is null ? pool : throw Bad(where, "an IPv4 subnet such as 10.177.0.0/16") },
                _ => throw new IOException($"{where} is not a setting (storeRoot, everySeconds, deadlineSeconds, mergeAfter, mergeAboveBytes, keepLast, keepForSeconds, compress, restartOnFailure, metricsAddress, bridge, addressPool)"),
            };
        }
        return config;
    }

    // Metrics say what groups run and how: served to this machine only.
    private static IPEndPoint Loopback(JsonElement value, string where) =>
        value.ValueKind == JsonValueKind.String && IPEndPoint.TryParse(value.GetString()!, out var endpoint) && IPAddress.IsLoopback(endpoint.Address) && endpoint.Port > 0
            ? endpoint : throw Bad(where, "a loopback address and port, such as 127.0.0.1:9464 or [::1]:9464");

    private static string FullPath(JsonElement value, string where) =>
        value.ValueKind == JsonValueKind.String && value.GetString() is { } s && System.IO.Path.IsPathFullyQualified(s) ? s : throw Bad(where, "a full path");

    // As --every and --deadline: 1 ms to 365 days.
    private static double Interval(JsonElement value, string where) =>
        value.ValueKind == JsonValueKind.Number && value.GetDouble() is >= 0.001 and <= 365 * 86400.0 ? value.GetDouble() : throw Bad(where, "seconds, from 0.001 to 31536000");

    private static IOException Bad(string where, string expected) => new($"{where} must be {expected}");

    /// <summary>For the log: what the file sets.</summary>
    public override string ToString() => Path is null ? "no configuration file (built-in defaults)" : string.Create(CultureInfo.InvariantCulture,
        $"{Path}: store root {StoreRoot ?? "-"}, every {EverySeconds?.ToString(CultureInfo.InvariantCulture) ?? "-"} s, merge after {MergeAfter?.ToString(CultureInfo.InvariantCulture) ?? "-"}, keep last {KeepLast?.ToString(CultureInfo.InvariantCulture) ?? "-"}, keep for {KeepForSeconds?.ToString(CultureInfo.InvariantCulture) ?? "-"} s, compress {Compress ?? "-"}, restart on failure {RestartOnFailure?.ToString() ?? "-"}, metrics at {MetricsAddress?.ToString() ?? "-"}, bridge {Bridge ?? "-"}, address pool {AddressPool ?? "-"}");
}
