using Amber.Image.Schema;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.AnonFds;

/// <summary>A signalfd: its signal mask, from /proc/PID/fdinfo (the signals it reads are the process's, saved with them).</summary>
public sealed class SignalFdKind : IFileKind
{
    public IReadOnlyList<FdKind> Restores { get; } = [FdKind.FdSignalfd];

    public bool TryDump(OpenFd fd, FdImage image)
    {
        if (fd.AnonKind != "signalfd")
            return false;
        image.Kind = FdKind.FdSignalfd;
        image.Signalfd = new SignalFdImage { Mask = AnonFdInfo.ParseSignalFdMask(ProcFs.ReadFdInfoText(fd.Pid, fd.Fd)) };
        return true;
    }

    public void Restore(FdRestore restore, FdImage fd) =>
        restore.Place(fd, restore.Calls.SignalFd(fd.Signalfd.Mask, (int)fd.Flags));
}
