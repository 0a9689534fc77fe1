namespace Amber.Checkpoint.Restore;

/// <param name="ExitCode">When not detached: the restored process's exit code (128+signal if killed).</param>
public sealed record RestoreResult(int Pid, TimeSpan Total, IReadOnlyList<string> Warnings, int? ExitCode);
