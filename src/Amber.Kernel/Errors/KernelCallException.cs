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

    public string Call { get; }

    public string Target { get; }

    public int Errno { get; }
}
