using Amber.Checkpoint.Restore;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Inject;

namespace Amber.Checkpoint.Resources.Terminals;

/// <summary>
/// Makes the checkpoint's pseudo-terminals again (<see cref="PtyResolver"/> says what they were):
/// each pair by its maker, the common ancestor of its holders, under its old index when it is free,
/// its master into a slot; its state set from amber through the master. The session leader takes it as
/// its controlling terminal right after starting its session, before any process of the session is
/// made (they inherit it, as they did); its foreground group is set once every process exists.
/// </summary>
public static class PtyRestorer
{
    /// <summary>How many terminals of lower index a restore holds at most while it looks for a terminal's own.</summary>
    private const int MostHeld = 4096;

    /// <summary>The pseudo-terminals <paramref name="image"/>'s process makes, each master into its slot.</summary>
    public static void CreateInSlots(RemoteCalls calls, ProcessImage image, RestoreTree tree, List<string> warnings)
    {
        foreach (var pty in image.Ptys)
        {
            int master = OpenMaster(calls, pty, out int index);
            int slot = tree.PtySlots[pty.Index];
            calls.Dup3(master, slot, closeOnExec: true);
            calls.Close(master);
            tree.PtyIndexes[pty.Index] = index;
            if (index != pty.Index)
                warnings.Add($"pseudo-terminal {pty.Index} came back as {index}: {pty.SlaveDirectory}/{pty.Index} is another terminal's now");
            var terminal = PtyMaster.Of(calls.Memory.Pid, slot);
            tree.Terminals.Add(terminal);
            terminal.Locked = false; // a new one is, until unlockpt
            terminal.Termios = pty.Termios.ToByteArray();
            terminal.WindowSize = pty.WindowSize.ToByteArray();
            terminal.PutForSlave(pty.ToSlave.Span);
            terminal.PutForMaster(pty.ToMaster.Span);
            if (pty.SlaveClosed)
                terminal.OpenAndCloseSlave();
            if (pty.PacketMode)
                terminal.PacketMode = true;
            if (pty.Locked)
                terminal.Locked = true;
        }
    }

    /// <summary>
    /// A new master with the index <paramref name="pty"/> had, if it is free: indexes are given lowest
    /// free first, so the lower free ones are held until it comes (or a higher one does: it is taken).
    /// </summary>
    private static int OpenMaster(RemoteCalls calls, PtyImage pty, out int index)
    {
        var lower = new List<int>();
        int master;
        while (true)
        {
            master = calls.OpenAt(pty.MasterPath, OpenFlags.ReadWrite | OpenFlags.NoCtty | OpenFlags.CloseOnExec);
            index = calls.PtyIndex(master);
            if (index >= pty.Index || lower.Count >= MostHeld)
                break;
            lower.Add(master);
        }
        foreach (int held in lower)
            calls.Close(held);
        return master;
    }

    /// <summary>
    /// The session <paramref name="image"/>'s process has just started takes its controlling terminal,
    /// through the process's own slave fd or one opened for the moment.
    /// </summary>
    public static void TakeControl(RemoteCalls calls, ProcessImage image, RestoreTree tree)
    {
        if (image.Sid != image.Pid)
            return;
        foreach (var pty in tree.Ptys.Values.Where(p => p.Session == image.Pid))
            WithSlave(calls, image, tree, pty, calls.TakeControllingTerminal);
    }

    /// <summary>The foreground group of the terminal <paramref name="image"/>'s process controls, once every process exists.</summary>
    public static void SetForeground(RemoteCalls calls, ProcessImage image, RestoreTree tree, List<string> warnings)
    {
        if (image.Sid != image.Pid)
            return;
        foreach (var pty in tree.Ptys.Values.Where(p => p.Session == image.Pid && p.ForegroundGroup != 0 && p.ForegroundGroup != image.Pgid))
        {
            try
            {
                WithSlave(calls, image, tree, pty, fd => calls.SetForegroundGroup(fd, pty.ForegroundGroup));
            }
            catch (Kernel.KernelCallException e)
            {
                warnings.Add($"pseudo-terminal {pty.Index}: its foreground process group {pty.ForegroundGroup} could not be set again ({e.Message})");
            }
        }
    }

    private static void WithSlave(RemoteCalls calls, ProcessImage image, RestoreTree tree, PtyImage pty, Action<int> act)
    {
        var own = image.Fds.FirstOrDefault(f => f.Kind == FdKind.FdPtySlave && f.PtyIndex == pty.Index);
        if (own is not null)
        {
            act(own.Fd);
            return;
        }
        int fd = calls.OpenAt(tree.SlavePath(pty.Index), OpenFlags.ReadWrite | OpenFlags.NoCtty | OpenFlags.CloseOnExec);
        try
        {
            act(fd);
        }
        finally
        {
            calls.Close(fd);
        }
    }
}
