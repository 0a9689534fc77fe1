namespace Amber.Coordinator.Daemon;

/// <summary>
/// A node's checkpoint as one part of a checkpoint across nodes: asked just before its freeze
/// (every node's part freezes at the leader's one word), and once everything is read out of its
/// frozen processes, before they run on (none does before every node's part is read out). Each
/// answers null to go on, or why not: then the part is abandoned, its processes run on as they were.
/// </summary>
public sealed record PartBarrier(Func<string?> BeforeFreeze, Func<string?> AtBarrier);
