namespace Amber.Kernel;

/// <summary>The process exited while Amber was looking at it.</summary>
public sealed class TargetGoneException(int pid) : Exception($"process {pid} does not exist (it exited, or the PID is wrong)")
{
    /// <summary>The process that is gone.</summary>
    public int Pid { get; } = pid;
}
