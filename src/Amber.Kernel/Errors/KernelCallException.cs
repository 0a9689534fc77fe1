using System.Runtime.InteropServices;

namespace Amber.Kernel;

/// <summary>
/// A system call failed. The one exception type for every errno: it names the call, the target it
/// acted on and the kernel's reason, so a caller can print <see cref="Exception.Message"/> as-is.
/// </summary>
public sealed class KernelCallException : Exception
{
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

    public string Call { get; }

    public string Target { get; }

    /// <summary>The kernel's errno; 0 when the failure came with a reason of its own.</summary>
    public int Errno { get; }
}
