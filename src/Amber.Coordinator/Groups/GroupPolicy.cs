using System.Globalization;
using System.Text.Json.Serialization;
using Amber.Coordinator.Control;

namespace Amber.Coordinator.Groups;

/// <summary>
/// The settings that are a group's rather than one node's part of it: when it is checkpointed, what a
/// failure or a node's loss does, how its chains are folded and kept. A group across nodes has one
/// (the cluster's store keeps it), which every node's part takes; its store, storage, key, namespaces
/// and network stay each part's own.
/// </summary>
public sealed record GroupPolicy
{
    public double EverySeconds { get; init; }

    public bool RestartOnFailure { get; init; }

    public string NodeLoss { get; init; } = "";

    public double DeadlineSeconds { get; init; } = 5;

    public int MergeAfter { get; init; } = 8;

    public long MergeAboveBytes { get; init; }

    public int KeepLast { get; init; }

    public double KeepForSeconds { get; init; }

    public string Compress { get; init; } = "none";

    /// <summary>The group's policy as <paramref name="config"/> has it.</summary>
    public static GroupPolicy Of(GroupConfig config) => new()
    {
        EverySeconds = config.EverySeconds, RestartOnFailure = config.RestartOnFailure, NodeLoss = config.NodeLoss, DeadlineSeconds = config.DeadlineSeconds,
        MergeAfter = config.MergeAfter, MergeAboveBytes = config.MergeAboveBytes, KeepLast = config.KeepLast, KeepForSeconds = config.KeepForSeconds, Compress = config.Compress,
    };

    /// <summary>Whether <paramref name="request"/> gives any of the settings a policy holds.</summary>
    public static bool GivenBy(RunRequest request) =>
        request.EverySeconds > 0 || request.RestartOnFailure is not null || request.NodeLoss.Length > 0 || request.DeadlineSeconds > 0 || request.MergeAfter > 0
        || request.MergeAboveBytes > 0 || request.KeepLast > 0 || request.KeepForSeconds > 0 || request.Compress.Length > 0;

    /// <summary>This policy with the settings <paramref name="request"/> gives (those it leaves out unchanged).</summary>
    public GroupPolicy With(RunRequest request) => this with
    {
        EverySeconds = request.EverySeconds > 0 ? request.EverySeconds : EverySeconds,
        RestartOnFailure = request.RestartOnFailure ?? RestartOnFailure,
        NodeLoss = request.NodeLoss.Length > 0 ? request.NodeLoss == GroupConfig.LostOnly ? GroupConfig.LostOnly : "" : NodeLoss,
        DeadlineSeconds = request.DeadlineSeconds > 0 ? request.DeadlineSeconds : DeadlineSeconds,
        MergeAfter = request.MergeAfter > 0 ? request.MergeAfter : MergeAfter,
        MergeAboveBytes = request.MergeAboveBytes > 0 ? request.MergeAboveBytes : MergeAboveBytes,
        KeepLast = request.KeepLast > 0 ? request.KeepLast : KeepLast,
        KeepForSeconds = request.KeepForSeconds > 0 ? request.KeepForSeconds : KeepForSeconds,
        Compress = request.Compress.Length > 0 ? request.Compress : Compress,
    };

    /// <summary>Gives <paramref name="config"/> this policy; what changed, one line each (--every 30 s -> 5 s).</summary>
    public List<string> ApplyTo(GroupConfig config)
    {
        var changes = new List<string>();
        void Change<T>(string option, T from, T to, Action set, Func<T, string> say)
        {
            if (EqualityComparer<T>.Default.Equals(from, to))
                return;
            set();
            changes.Add($"{option} {say(from)} -> {say(to)}");
        }
        static string Seconds(double s) => s > 0 ? $"{s.ToString(CultureInfo.InvariantCulture)} s" : "none";
        static string Count(int n) => n > 0 ? n.ToString(CultureInfo.InvariantCulture) : "no rule";
        Change("--every", config.EverySeconds, EverySeconds, () => config.EverySeconds = EverySeconds, Seconds);
        Change("--deadline", config.DeadlineSeconds, DeadlineSeconds, () => config.DeadlineSeconds = DeadlineSeconds, Seconds);
        Change("--merge-after", config.MergeAfter, MergeAfter, () => config.MergeAfter = MergeAfter, Count);
        Change("--merge-above", config.MergeAboveBytes, MergeAboveBytes, () => config.MergeAboveBytes = MergeAboveBytes,
            b => b > 0 ? $"{b.ToString(CultureInfo.InvariantCulture)} bytes" : "no limit");
        Change("--keep-last", config.KeepLast, KeepLast, () => config.KeepLast = KeepLast, Count);
        Change("--keep-for", config.KeepForSeconds, KeepForSeconds, () => config.KeepForSeconds = KeepForSeconds, Seconds);
        Change("--compress", config.Compress, Compress, () => config.Compress = Compress, c => c);
        Change("--node-loss", config.NodeLoss, NodeLoss, () => config.NodeLoss = NodeLoss, l => l.Length > 0 ? l : "rollback");
        Change("--restart-on-failure", config.RestartOnFailure, RestartOnFailure, () => config.RestartOnFailure = RestartOnFailure, r => r ? "on" : "off");
        return changes;
    }

    /// <summary>Why a policy read from elsewhere (the cluster's store) cannot be a group's, or null.</summary>
    public string? Problem()
    {
        var request = new RunRequest("policy")
        {
            EverySeconds = EverySeconds, DeadlineSeconds = DeadlineSeconds, MergeAfter = MergeAfter, MergeAboveBytes = MergeAboveBytes,
            KeepLast = KeepLast, KeepForSeconds = KeepForSeconds, Compress = Compress,
        };
        if (Daemon.Handlers.GroupSettings.Problem(request) is { } problem)
            return problem;
        if (MergeAfter < 1 || DeadlineSeconds <= 0 || Compress.Length == 0)
            return "a merge limit and a deadline are needed, and a compression";
        return NodeLoss is "" or GroupConfig.LostOnly ? null : $"unknown node loss '{NodeLoss}'";
    }

    /// <summary>On one line, for a log or a status: every 30 s, rollback, keep last 5...</summary>
    public override string ToString()
    {
        var parts = new List<string> { EverySeconds > 0 ? $"every {EverySeconds.ToString(CultureInfo.InvariantCulture)} s" : "no schedule", NodeLoss.Length > 0 ? NodeLoss : "rollback" };
        if (RestartOnFailure)
            parts.Add("restart on failure");
        if (KeepLast > 0)
            parts.Add($"keep last {KeepLast}");
        if (KeepForSeconds > 0)
            parts.Add($"keep for {KeepForSeconds.ToString(CultureInfo.InvariantCulture)} s");
        parts.Add($"merge after {MergeAfter}");
        if (Compress != "none")
            parts.Add(Compress);
        return string.Join(", ", parts);
    }
}

/// <summary>A policy as the cluster's store keeps it (camelCase JSON; source-generated: the CLI is Native AOT).</summary>
[JsonSourceGenerationOptions(WriteIndented = false, PropertyNamingPolicy = JsonKnownNamingPolicy.CamelCase)]
[JsonSerializable(typeof(GroupPolicy))]
public sealed partial class GroupPolicyJson : JsonSerializerContext;
