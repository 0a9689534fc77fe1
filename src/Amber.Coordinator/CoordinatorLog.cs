using Microsoft.Extensions.Logging;

namespace Amber.Coordinator;

/// <summary>
/// Every event the coordinator logs, one line each (source-generated: no reflection, Native AOT).
/// The group and the checkpoint are fields of their own (Group, Checkpoint) for structured sinks;
/// the text of each message is what the daemon log has always said, which tests and users grep.
/// Information: what was done (checkpoints taken, restores, merges); Warning: what went wrong and
/// was dealt with; Error: an operation that failed.
/// </summary>
internal static partial class CoordinatorLog
{
    // The daemon's life.
    [LoggerMessage(Level = LogLevel.Information, Message = "coordinator {Pid} listening on {Socket}")]
    public static partial void Listening(this ILogger logger, int pid, string socket);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Problem}")]
    public static partial void NotNotified(this ILogger logger, string problem);

    [LoggerMessage(Level = LogLevel.Information, Message = "configuration: {Settings}")]
    public static partial void Configured(this ILogger logger, string settings);

    [LoggerMessage(Level = LogLevel.Information, Message = "serving metrics at {Address}")]
    public static partial void ServingMetrics(this ILogger logger, string address);

    [LoggerMessage(Level = LogLevel.Information, Message = "coordinator stopping (the groups run on)")]
    public static partial void Stopping(this ILogger logger);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: found again ({Processes} processes, last checkpoint {Checkpoint})")]
    public static partial void FoundAgain(this ILogger logger, string group, int processes, string checkpoint);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: forgotten, with what it got of it: it was still arriving from another node when the coordinator before this one ended")]
    public static partial void ArrivalAbandoned(this ILogger logger, string group);

    [LoggerMessage(Level = LogLevel.Warning, Message = "skipping {Config}: {Reason}")]
    public static partial void Skipping(this ILogger logger, string config, string reason);

    [LoggerMessage(Level = LogLevel.Warning, Message = "accept: {Reason}")]
    public static partial void AcceptFailed(this ILogger logger, string reason);

    /// <summary>A request failed in a way nobody foresaw (the formatter adds the exception on the same line).</summary>
    [LoggerMessage(Level = LogLevel.Error, Message = "a request failed")]
    public static partial void RequestFailed(this ILogger logger, Exception exception);

    // Operations.
    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: created (store {Store}{Settings})")]
    public static partial void Created(this ILogger logger, string group, string store, string settings);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: {Changes}")]
    public static partial void SettingsChanged(this ILogger logger, string group, string changes);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: launched {Command} as process {Pid}")]
    public static partial void Launched(this ILogger logger, string group, string command, int pid);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: attached process tree {Pid} ({Processes} processes)")]
    public static partial void Attached(this ILogger logger, string group, int pid, int processes);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: detached process tree {Pid}")]
    public static partial void Detached(this ILogger logger, string group, int pid);

    [LoggerMessage(Level = LogLevel.Information, Message = "checkpointed group {Group} as {Checkpoint}{Summary}")]
    public static partial void CheckpointTaken(this ILogger logger, string group, string checkpoint, string summary);

    [LoggerMessage(Level = LogLevel.Error, Message = "group {Group}: checkpoint failed: {Error}")]
    public static partial void CheckpointFailed(this ILogger logger, string group, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "restored group {Group} from {Checkpoint}: {Summary}")]
    public static partial void Restored(this ILogger logger, string group, string checkpoint, string summary);

    [LoggerMessage(Level = LogLevel.Error, Message = "group {Group}: restore from {Checkpoint} failed: {Error}")]
    public static partial void RestoreFailed(this ILogger logger, string group, string checkpoint, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "merged group {Group}'s {Checkpoint} into a full checkpoint {Summary}")]
    public static partial void Merged(this ILogger logger, string group, string checkpoint, string summary);

    [LoggerMessage(Level = LogLevel.Error, Message = "group {Group}: merge of {Checkpoint} failed: {Error}")]
    public static partial void MergeFailed(this ILogger logger, string group, string checkpoint, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: retention ({Policy}) removed {Removed}{Merged}")]
    public static partial void Retained(this ILogger logger, string group, string policy, string removed, string merged);

    [LoggerMessage(Level = LogLevel.Error, Message = "group {Group}: retention ({Policy}) failed: {Error}")]
    public static partial void RetentionFailed(this ILogger logger, string group, string policy, string error);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: stopped ({Processes} processes ended)")]
    public static partial void Stopped(this ILogger logger, string group, int processes);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: removed (store {Store} kept)")]
    public static partial void Removed(this ILogger logger, string group, string store);

    // Stores.
    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: store {Store} made again, or replaced: uid {Owner} may write it")]
    public static partial void StoreReplaced(this ILogger logger, string group, string store, uint owner);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: removed what interrupted checkpoints left in its store: {Leftovers}")]
    public static partial void LeftoversRemoved(this ILogger logger, string group, string leftovers);

    // The monitor.
    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: {Reason}")]
    public static partial void MonitorProblem(this ILogger logger, string group, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "group {Group}: {Work} failed: {Error}")]
    public static partial void BackgroundFailed(this ILogger logger, string group, string work, string error);

    /// <summary>A tree root ended: Information if it ended well, Warning if it failed.</summary>
    [LoggerMessage(Message = "group {Group}: member {Pid} {How}")]
    public static partial void MemberEnded(this ILogger logger, LogLevel level, string group, int pid, string how);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: cannot restart: {Why}")]
    public static partial void CannotRestart(this ILogger logger, string group, string why);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: restarting after {Failures}: stopping the rest, restoring {Checkpoint}")]
    public static partial void Restarting(this ILogger logger, string group, string failures, string checkpoint);

    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: restarted (restart {Restarts})")]
    public static partial void Restarted(this ILogger logger, string group, int restarts);

    // Registered programs.
    [LoggerMessage(Level = LogLevel.Information, Message = "group {Group}: process {Pid} registered as '{Name}'")]
    public static partial void Registered(this ILogger logger, string group, int pid, string name);

    [LoggerMessage(Level = LogLevel.Warning, Message = "group {Group}: {Program}: its {Callback} for {Checkpoint} threw {Error}; {Outcome}")]
    public static partial void CallbackThrew(this ILogger logger, string group, string program, string callback, string checkpoint, string error, string outcome);
}
