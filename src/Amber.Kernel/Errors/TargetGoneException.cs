namespace Amber.Kernel;

/// <summary>The process exited while Amber was looking at it.</summary>
public sealed class TargetGoneException(int pid) : Exception($"process {pid} does not exist (it exited, or the PID is wrong)")
{
    public int Pid { get; } = pid;
}
