using Amber.Native;

namespace Amber.Kernel.Inject;

public sealed partial class RemoteCalls
{
    public int InotifyInit(int statusFlags) =>
        (int)Call("inotify_init1", SyscallNumbers.InotifyInit1, (ulong)(statusFlags & Interop.O_NONBLOCK));

    public int InotifyAddWatch(int fd, string path, uint mask)
    {
        ulong p = WriteString(path);
        return (int)Call($"inotify_add_watch({path})", SyscallNumbers.InotifyAddWatch, (ulong)fd, p, mask);
    }

    public void InotifyRemoveWatch(int fd, int wd) => Call("inotify_rm_watch", SyscallNumbers.InotifyRmWatch, (ulong)fd, (ulong)wd);
}
