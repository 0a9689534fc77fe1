using System.Globalization;

namespace Amber.Checkpoint;

/// <summary>Where a test can make a checkpoint or restore fail (or pause), to prove the failure path.</summary>
public enum FaultPoint
{
    AfterFreeze,
    AfterThreadState,
    DuringPages,
    /// <summary>The TCP connections are locked and in repair mode, not read yet.</summary>
    AfterNetworkLock,
    BeforeCommit,
    /// <summary>A part of a checkpoint across nodes read out, its processes frozen, before it says so to the leader (CheckpointOptions.AtBarrier).</summary>
    AtBarrier,
    /// <summary>A hand-over's checkpoint sealed and handed over, the answer given, not committed yet (CheckpointOptions.BeforeEnd).</summary>
    SealedCommit,
    /// <summary>Committed, the network lock handed to the checkpoint, the processes not ended yet.</summary>
    BeforeEnd,
    RestoreAfterCreate,
    /// <summary>A restore worker started ahead (a migration's destination), ready, before it asks which checkpoint to restore.</summary>
    RestoreAhead,
    /// <summary>A network namespace's veth pairs made (by a restore, or for a group's first program), their addresses not yet.</summary>
    NetworkSetup,
    RestoreBeforeRelease,
    /// <summary>A restore that failed with its network made: its interfaces taken away, its network lock not lifted yet.</summary>
    RestoreUndo,
    /// <summary>Every restored process released, the network lock not lifted yet.</summary>
    RestoreBeforeUnlock,
    /// <summary>A merge has written and committed the merged checkpoint beside the old one, and not swapped them yet.</summary>
    MergeBeforeSwap,
    /// <summary>A migration's destination (its agent) has released the group and is to make the checkpoints that brought it durable.</summary>
    ReceivedDurable,
    /// <summary>A migrated part of a group across nodes placed on its destination in the catalog, the destination not told to release it yet.</summary>
    MovePlaced,
}

/// <summary>
/// Fault injection for tests, off unless AMBER_FAULT is set: "Point" fails at that point,
/// "Point:sleep=MS" pauses there (so a test can send a signal at a known moment); several, separated
/// by commas, each at its own point.
/// </summary>
public static class Faults
{
    private static readonly string[] Settings = Environment.GetEnvironmentVariable("AMBER_FAULT")?.Split(',') ?? [];

    public static void Check(FaultPoint point)
    {
        if (Array.Find(Settings, s => string.Equals(s.Split(':', 2)[0], point.ToString(), StringComparison.OrdinalIgnoreCase)) is not { } setting)
            return;
        var parts = setting.Split(':', 2);
        if (parts.Length == 2 && parts[1].StartsWith("sleep=", StringComparison.Ordinal))
        {
            Thread.Sleep(int.Parse(parts[1]["sleep=".Length..], CultureInfo.InvariantCulture));
            return;
        }
        throw new CheckpointException($"injected fault at {point} (AMBER_FAULT)");
    }
}
