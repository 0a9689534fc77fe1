using Amber.Native;

namespace Amber.Kernel.Processes;

/// <summary>An anonymous in-memory file (memfd) holding bytes to exec, e.g. the husk.</summary>
public sealed class MemFile : IDisposable
{
    private readonly SafeFdHandle _fd;

    public unsafe MemFile(string name, ReadOnlySpan<byte> content)
    {
        var n = NativeString.Utf8Z(name);
        int fd;
        fixed (byte* p = n)
            fd = Interop.MemfdCreate(p, Interop.MFD_CLOEXEC);
        Errnos.Check(fd, "memfd_create", name);
        _fd = new SafeFdHandle(fd);
        fixed (byte* p = content)
        {
            if (Interop.Write(fd, p, (nuint)content.Length) != content.Length)
                Errnos.Throw("write", $"memfd {name}");
        }
    }

    /// <summary>A path that exec can use: the kernel resolves it before close-on-exec closes the fd.</summary>
    public string ExecPath => $"/proc/self/fd/{_fd.Fd}";

    public void Dispose() => _fd.Dispose();
}
