using Amber.Image.Schema;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.AnonFds;

/// <summary>An eventfd: its counter and semaphore mode, from /proc/PID/fdinfo; made again with them.</summary>
public sealed class EventFdKind : IFileKind
{
    public IReadOnlyList<FdKind> Restores { get; } = [FdKind.FdEventfd];

    public bool TryDump(OpenFd fd, FdImage image)
    {
        if (fd.AnonKind != "eventfd")
            return false;
        var e = AnonFdInfo.ParseEventFd(ProcFs.ReadFdInfoText(fd.Pid, fd.Fd));
        if (e.Count > uint.MaxValue)
            throw new UnsupportedResourceException(fd.Pid, $"fd {fd.Fd} (eventfd)", "an eventfd whose counter exceeds 2^32-1");
        image.Kind = FdKind.FdEventfd;
        image.Eventfd = new EventFdImage { Count = e.Count, Semaphore = e.Semaphore };
        return true;
    }

    public void Restore(FdRestore restore, FdImage fd) =>
        restore.Place(fd, restore.Calls.EventFd((uint)fd.Eventfd.Count, fd.Eventfd.Semaphore, (int)fd.Flags));
}
