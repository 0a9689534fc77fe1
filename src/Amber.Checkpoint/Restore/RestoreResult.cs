namespace Amber.Checkpoint.Restore;

/// <param name="Pid">The root of the (first) tree.</param>
/// <param name="Roots">The root of every tree restored (several for a group).</param>
/// <param name="ExitCode">When not detached: the restored process's exit code (128+signal if killed).</param>
public sealed record RestoreResult(int Pid, IReadOnlyList<int> Roots, TimeSpan Total, IReadOnlyList<string> Warnings, int? ExitCode);
