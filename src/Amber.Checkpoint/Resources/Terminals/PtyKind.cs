using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Resources.Terminals;

/// <summary>
/// An fd of a pseudo-terminal. At checkpoint it is only named (master or slave, and the terminal's
/// index); whether the terminal is the checkpoint's own — its master held by one of its processes — or
/// one from outside (a slave whose master someone else holds: a user's terminal) is decided once every
/// process is known (<see cref="PtyResolver"/>). At restore the pair is made by the common ancestor of
/// its holders (<see cref="PtyRestorer"/>), its master handed down in a slot; a slave is opened again
/// by its path, the same terminal's under its index now.
/// </summary>
public sealed class PtyKind : IFileKind
{
    /// <summary>The device of /dev/ptmx (and of a devpts instance's own ptmx): 5:2.</summary>
    private const uint PtmxMajor = 5, PtmxMinor = 2;

    /// <summary>The majors of Unix 98 pseudo-terminal slaves (136, and up to 143 on kernels of 8-bit minors).</summary>
    private const uint SlaveMajorFirst = 136, SlaveMajorLast = 143;

    public IReadOnlyList<FdKind> Restores { get; } = [FdKind.FdPtyMaster, FdKind.FdPtySlave];

    public bool TryDump(OpenFd fd, FdImage image)
    {
        if (!fd.Stat.IsCharDevice)
            return false;
        var (major, minor) = DeviceNumbers(fd.Stat.RDevice);
        if (major == PtmxMajor && minor == PtmxMinor)
        {
            using var master = PtyMaster.Of(fd.Pid, fd.Fd);
            image.Kind = FdKind.FdPtyMaster;
            image.PtyIndex = (uint)master.Index;
            return true;
        }
        if (major is >= SlaveMajorFirst and <= SlaveMajorLast && fd.Link.StartsWith('/'))
        {
            image.Kind = FdKind.FdPtySlave;
            image.PtyIndex = (major - SlaveMajorFirst) * 256 + minor;
            return true;
        }
        return false;
    }

    public void Restore(FdRestore restore, FdImage fd)
    {
        if (fd.Kind == FdKind.FdPtyMaster)
            restore.Share(restore.Tree.PtySlots[fd.PtyIndex], fd);
        else
            restore.Place(fd, OpenSlave(restore.Calls, fd, restore.Tree));
    }

    /// <summary>A new open file of the slave <paramref name="fd"/> was, on the terminal made again for it, with its flags.</summary>
    public static int OpenSlave(RemoteCalls calls, FdImage fd, Restore.RestoreTree tree) =>
        calls.OpenAt(tree.SlavePath(fd.PtyIndex), ((int)fd.Flags & ~OpenFlags.CreationOnly) | OpenFlags.CloseOnExec | OpenFlags.NoCtty);

    /// <summary>The major and minor of a device number as stat gives it (glibc's encoding: 12-bit major, 20-bit minor).</summary>
    private static (uint Major, uint Minor) DeviceNumbers(ulong rdev) =>
        ((uint)(((rdev >> 8) & 0xfff) | ((rdev >> 32) & ~0xfffUL)), (uint)((rdev & 0xff) | ((rdev >> 12) & ~0xffUL)));
}
