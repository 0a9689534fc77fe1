using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace Amber.Kernel;

/// <summary>The errno values Amber reacts to, and the single place errno becomes an exception.</summary>
public static class Errnos
{
    public const int EPERM = 1;
    public const int ENOENT = 2;
    public const int ESRCH = 3;
    public const int EINTR = 4;
    public const int EIO = 5;
    public const int EBADF = 9;
    public const int ECHILD = 10;
    public const int EAGAIN = 11;
    public const int ENOMEM = 12;
    public const int EACCES = 13;
    public const int EFAULT = 14;
    public const int EBUSY = 16;
    public const int EEXIST = 17;
    public const int EINVAL = 22;
    public const int ENOSPC = 28;
    public const int EPIPE = 32;
    public const int ERANGE = 34;
    public const int ENOSYS = 38;
    public const int EIDRM = 43;
    public const int ENODATA = 61;
    public const int EOPNOTSUPP = 95;
    public const int ERESTARTSYS = 512;
    public const int ERESTARTNOINTR = 513;
    public const int ERESTARTNOHAND = 514;
    public const int ERESTART_RESTARTBLOCK = 516;

    [DoesNotReturn]
    public static void Throw(string call, string target) =>
        throw new KernelCallException(call, target, Marshal.GetLastPInvokeError());

    public static int Check(int result, string call, string target)
    {
        if (result < 0)
            Throw(call, target);
        return result;
    }

    public static long Check(long result, string call, string target)
    {
        if (result < 0)
            Throw(call, target);
        return result;
    }
}
