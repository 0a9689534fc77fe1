using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Proc;

/// <summary>Opens a binary /proc file of a process (mem, pagemap) as a raw fd for pread/pwrite.</summary>
internal static class ProcFile
{
    public static unsafe SafeFdHandle Open(int pid, string name, bool write)
    {
        var path = NativeString.Utf8Z($"/proc/{pid}/{name}");
        int fd;
        fixed (byte* p = path)
            fd = Interop.Open(p, (write ? Interop.O_RDWR : Interop.O_RDONLY) | Interop.O_CLOEXEC, 0);
        if (fd < 0)
        {
            if (Marshal.GetLastPInvokeError() == Errnos.ENOENT)
                throw new TargetGoneException(pid);
            Errnos.Throw($"open /proc/PID/{name}", $"process {pid}");
        }
        return new SafeFdHandle(fd);
    }
}
