using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Resources.Files;

/// <summary>
/// What connects a process to whoever started it: a terminal, or a pipe or socket on fds 0-2 that no
/// other kind took (its other end is outside). The restore cannot bring that party back: the fd reads
/// and writes /dev/null, or whatever the user hands over with --inherit-fd.
/// </summary>
public sealed class ExternalKind : IFileKind
{
    public IReadOnlyList<FdKind> Restores { get; } = [FdKind.FdExternal];

    public bool TryDump(OpenFd fd, FdImage image)
    {
        var st = fd.Stat;
        if (!(st.IsCharDevice && IsTerminal(fd.Link)) && !((st.IsFifo || st.IsSocket) && fd.Fd <= 2))
            return false;
        image.Kind = FdKind.FdExternal;
        return true;
    }

    public void Restore(FdRestore restore, FdImage fd)
    {
        int flags = (int)fd.Flags & OpenFlags.AccessMode;
        restore.Place(fd, restore.Calls.OpenAt("/dev/null", flags | OpenFlags.CloseOnExec | OpenFlags.NoCtty));
        restore.Warnings.Add($"fd {fd.Fd} was {fd.Description} from outside the process; it now reads and writes /dev/null (pass --inherit-fd {fd.Fd} to hand over one of amber's)");
    }

    private static bool IsTerminal(string path) =>
        path.StartsWith("/dev/pts/", StringComparison.Ordinal) || path.StartsWith("/dev/tty", StringComparison.Ordinal)
        || path == "/dev/console";
}
