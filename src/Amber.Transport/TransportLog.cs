using Microsoft.Extensions.Logging;

namespace Amber.Transport;

/// <summary>What the node agent logs, one line each (source-generated), in the coordinator's log.</summary>
internal static partial class TransportLog
{
    [LoggerMessage(Level = LogLevel.Information, Message = "node agent {Node} listening on {Address} (mutual TLS, cluster CA {Ca})")]
    public static partial void AgentListening(this ILogger logger, string node, string address, string ca);

    [LoggerMessage(Level = LogLevel.Warning, Message = "refused a connection from {Address}: {Problem}")]
    public static partial void Refused(this ILogger logger, string address, string problem);

    [LoggerMessage(Level = LogLevel.Error, Message = "the connection from {Address} failed: {Problem}")]
    public static partial void PeerFailed(this ILogger logger, string address, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: migrated to node {Node}: {Summary}")]
    public static partial void MigratedOut(this ILogger logger, string group, string node, string summary);

    [LoggerMessage(Level = LogLevel.Error, Message = "group {Group}: migration to node {Node} failed: {Problem}")]
    public static partial void MigrationOutFailed(this ILogger logger, string group, string node, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: arrived from node {Node}, running (roots {Roots})")]
    public static partial void MigratedIn(this ILogger logger, string group, string node, string roots);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: migration from node {Node} abandoned, nothing of it kept: {Problem}")]
    public static partial void MigrationInAbandoned(this ILogger logger, string group, string node, string problem);

    [LoggerMessage(Level = LogLevel.Error, Message = "group {Group}: migration from node {Node} failed after the source ended its copy; the group stays here, stopped, with checkpoint {Checkpoint}: {Problem}")]
    public static partial void MigrationInFailedAfterCommit(this ILogger logger, string group, string node, string checkpoint, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: the link to node {Node} ended before its word to release the group, but the catalog places it here (the source ended its copy and confirmed the move): released ({Problem})")]
    public static partial void MigrationInPlacedWithoutWord(this ILogger logger, string group, string node, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "node {Node} registered in the cluster's store ({Members}), lease {Lease} of {Ttl} s")]
    public static partial void Registered(this ILogger logger, string node, string members, long lease, int ttl);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the cluster's store is out of reach; the groups run on, and the node registers again once it answers: {Problem}")]
    public static partial void StoreUnreachable(this ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "node {Node}: its lease in the cluster's store had expired (the node was out of reach for longer than it); registered again")]
    public static partial void LeaseLost(this ILogger logger, string node);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: checkpointed across {Nodes} nodes as {Checkpoint}, every part read out {BarrierMs:0.0} ms after the word to freeze, frozen within {SpreadMs:0.0} ms of each other")]
    public static partial void AcrossNodesTaken(this ILogger logger, string group, string checkpoint, int nodes, double barrierMs, double spreadMs);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: restored across {Nodes} nodes from {Checkpoint}, every part made in {BarrierMs:0.0} ms")]
    public static partial void AcrossNodesRestored(this ILogger logger, string group, string checkpoint, int nodes, double barrierMs);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: operation across nodes abandoned, every part undone: {Problem}")]
    public static partial void AcrossNodesAbandoned(this ILogger logger, string group, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: ran a program for node {Node}'s uid {Uid}: {Outcome}")]
    public static partial void RanFor(this ILogger logger, string group, string node, uint uid, string outcome);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: checkpoint across nodes {Checkpoint}, taken while the cluster's store was out of reach, recorded in its catalog")]
    public static partial void CatalogCaughtUp(this ILogger logger, string group, string checkpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: checkpoint across nodes {Checkpoint}, taken while the cluster's store was out of reach, not recorded: {Why}")]
    public static partial void CatalogEntryDropped(this ILogger logger, string group, string checkpoint, string why);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: the cluster's store is out of reach; checkpointed on this node alone: {Problem}")]
    public static partial void CheckpointedAlone(this ILogger logger, string group, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: the restore worker started ahead is not used ({Why}): another restores checkpoint {Checkpoint}")]
    public static partial void RestoreAheadReplaced(this ILogger logger, string group, string why, string checkpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: node(s) {Nodes} lost (no longer live in the cluster's store): restoring the whole group from its checkpoint across nodes {Checkpoint}, their parts on the nodes that hold copies")]
    public static partial void NodesLost(this ILogger logger, string group, string nodes, string checkpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: running again after the loss of node(s) {Nodes}, from {Checkpoint}, {Ms:0} ms after the loss was seen: {Roots}")]
    public static partial void Recovered(this ILogger logger, string group, string nodes, string checkpoint, double ms, string roots);

    [LoggerMessage(Level = LogLevel.Error, Message = "group {Group}: could not be restored after the loss of node(s) {Nodes} (tried again in a moment): {Problem}")]
    public static partial void RecoveryFailed(this ILogger logger, string group, string nodes, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: checkpointed across the nodes it runs on now, as {Checkpoint}")]
    public static partial void RecoveredCheckpointed(this ILogger logger, string group, string checkpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: restored, but not checkpointed across the nodes it runs on now (a next loss finds no copy of what moved): {Problem}")]
    public static partial void RecoveredNotCheckpointed(this ILogger logger, string group, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: a member failed; the group it is a part of, {Across}, is restored by its leader: {Outcome}")]
    public static partial void RestartAcrossNodes(this ILogger logger, string group, string across, string outcome);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: node {Node}'s part {Part} failed ({Failures}): restoring the group from its checkpoint across nodes {Checkpoint}")]
    public static partial void RecoveringAfterFailure(this ILogger logger, string group, string node, string part, string failures, string checkpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: migrated; group {Across}, which it is a part of, checkpointed across the nodes it runs on now by its leader: {Outcome}")]
    public static partial void CheckpointAfterMove(this ILogger logger, string group, string across, string outcome);

    [LoggerMessage(Level = LogLevel.Error, Message = "{What} failed, and goes on: {Problem}")]
    public static partial void WatchFailed(this ILogger logger, string what, string problem);

    [LoggerMessage(Level = LogLevel.Warning, Message = "cut off from the cluster's store, as {Why}: groups {Groups} frozen until this node is live in it again (else they could run here and where the others restore them)")]
    public static partial void Fenced(this ILogger logger, string groups, string why);

    [LoggerMessage(Level = LogLevel.Warning, Message = "the cluster's store is out of reach for the other nodes too: groups {Groups} run on (nothing is restored anywhere meanwhile)")]
    public static partial void StoreAwayForAll(this ILogger logger, string groups);

    [LoggerMessage(Level = LogLevel.Error, Message = "group {Group}: could not be frozen while this node is cut off from the cluster's store: {Problem}")]
    public static partial void FenceFailed(this ILogger logger, string group, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: this node is live in the cluster's store again; the group is no longer held")]
    public static partial void FenceLifted(this ILogger logger, string group);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: ended here: while this node was not live in the cluster's store, its part of group {Across} was restored on other nodes from {Checkpoint}")]
    public static partial void TakenOver(this ILogger logger, string group, string across, string checkpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: node(s) {Nodes} are live again, or this node no longer leads the group: their parts are not taken over")]
    public static partial void NotClaimed(this ILogger logger, string group, string nodes);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: the group's settings in the cluster's store are now: {Settings}")]
    public static partial void SettingsWritten(this ILogger logger, string group, string settings);

    [LoggerMessage(Level = LogLevel.Information, Message = "removed {Copy}")]
    public static partial void CopyPruned(this ILogger logger, string copy);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: takes the settings of group {Across} in the cluster's store: {Changes}")]
    public static partial void SettingsTaken(this ILogger logger, string group, string across, string changes);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: {Outcome}")]
    public static partial void GroupForgotten(this ILogger logger, string group, string outcome);
}
