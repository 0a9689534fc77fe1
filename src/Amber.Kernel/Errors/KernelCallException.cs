using System.Runtime.InteropServices;

namespace Amber.Kernel;

/// <summary>
/// A system call failed. The one exception type for every errno: it names the call, the target it
/// acted on and the kernel's reason, so a caller can print <see cref="Exception.Message"/> as-is.
/// </summary>
public sealed class KernelCallException : Exception
{
    /// <summary>A call that failed with <paramref name="errno"/>.</summary>
    /// <param name="call">The system call (or operation), as the message names it.</param>
    /// <param name="target">What it acted on (process 1234, a path...).</param>
    /// <param name="errno">The kernel's error number.</param>
    public KernelCallException(string call, string target, int errno)
        : base($"{call} on {target} failed: {Marshal.GetPInvokeErrorMessage(errno)} (errno {errno})")
    {
        Call = call;
        Target = target;
        Errno = errno;
        HResult = errno;
    }

    /// <summary>A call that fails with a reason of its own, not an errno (a program amber runs, such as nft).</summary>
    public KernelCallException(string call, string target, string reason)
        : base($"{call} on {target} failed: {reason}")
    {
        Call = call;
        Target = target;
    }

    /// <summary>The system call (or operation) that failed.</summary>
    public string Call { get; }

    /// <summary>What it acted on.</summary>
    public string Target { get; }

    /// <summary>The kernel's errno; 0 when the failure came with a reason of its own.</summary>
    public int Errno { get; }
}
