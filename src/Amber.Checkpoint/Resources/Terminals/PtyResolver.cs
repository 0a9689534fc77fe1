using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Proc;
using Google.Protobuf;

namespace Amber.Checkpoint.Resources.Terminals;

/// <summary>
/// Decides what each pseudo-terminal of the checkpoint is, once every process's fds are known, and
/// reads its state under the freeze:
/// <list type="bullet">
/// <item>a slave whose master no process of the checkpoint holds is a terminal from outside (a user's):
/// external, as before;</item>
/// <item>a terminal whose master a process holds is the checkpoint's own, a <see cref="PtyImage"/> of
/// the common ancestor of everyone holding either side (/dev/tty, in the session it controls, is its
/// slave): its index, the slave's termios and window
/// size, packet mode, lock, the session it controls and that session's foreground group, and the
/// bytes waiting on either side — read out, as its readers would, and put straight back, so the
/// processes find them there whatever comes of the checkpoint;</item>
/// <item>refused: a slave held outside while the master is inside, a line discipline other than
/// N_TTY, and whole lines typed for a canonical-mode reader and not read yet (reading them out and
/// back would put them after a line still being typed).</item>
/// </list>
/// </summary>
public static class PtyResolver
{
    /// <summary>Warnings (a session whose leader is not in the checkpoint).</summary>
    public static List<string> Resolve(IReadOnlyList<ProcessImage> processes)
    {
        var warnings = new List<string>();
        var byPid = processes.ToDictionary(p => p.Pid);
        var tree = processes.Select(p => p.Pid).ToHashSet();
        List<(ProcessImage Process, FdImage Fd)> Ends(FdKind kind) => [.. processes.SelectMany(p => p.Fds.Where(f => f.Kind == kind).Select(f => (p, f)))];
        var masters = Ends(FdKind.FdPtyMaster).GroupBy(e => e.Fd.PtyIndex).ToDictionary(g => g.Key, g => g.ToList());
        var slaves = Ends(FdKind.FdPtySlave).GroupBy(e => e.Fd.PtyIndex).ToDictionary(g => g.Key, g => g.ToList());
        foreach (var (index, outside) in slaves.Where(s => !masters.ContainsKey(s.Key)))
        {
            foreach (var (_, fd) in outside)
            {
                fd.Kind = FdKind.FdExternal;
                fd.PtyIndex = 0;
            }
        }
        var made = new List<(PtyImage Image, List<int> Holders)>();
        foreach (var (index, holders) in masters)
        {
            var slaveHolders = slaves.GetValueOrDefault(index) ?? [];
            var (first, firstFd) = holders[0];
            foreach (var (process, fd) in holders.Skip(1).Where(h => !h.Fd.HasSharesDescriptionWith))
            {
                // Every open of /dev/ptmx makes a new terminal: one master is one open file.
                if (!ProcessFiles.SameDescription(first.Pid, firstFd.Fd, process.Pid, fd.Fd))
                    throw new UnsupportedResourceException(process.Pid, $"fd {fd.Fd} ({fd.Description})", "a second open file of a pseudo-terminal master");
            }
            var who = $"pseudo-terminal {index} (master fd {firstFd.Fd} of process {first.Pid})";
            string slavePath = $"/dev/pts/{index}";
            if (slaveHolders.FirstOrDefault() is { Fd: var slaveFd })
                slavePath = slaveFd.Path;
            if (ProcFs.FindFdHolder(slavePath, _ => true, tree) is { } holder)
                throw new UnsupportedResourceException(first.Pid, who, $"a terminal whose slave process {holder.Pid} holds (as fd {holder.Fd}), outside the checkpointed processes");
            PtyImage image;
            List<(ProcessImage Process, FdImage Fd)> ttyHolders;
            try
            {
                using var master = PtyMaster.Of(first.Pid, firstFd.Fd);
                int session = master.Session;
                bool leaderHere = session != 0 && byPid.ContainsKey(session);
                // /dev/tty is the controlling terminal of whoever opens it: in the session this terminal
                // controls, it is this terminal's slave (opened again as such).
                ttyHolders = [.. processes.Where(p => leaderHere && p.Sid == session)
                    .SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdExternal && f.Path == "/dev/tty").Select(f => (Process: p, Fd: f)))];
                foreach (var (_, fd) in ttyHolders)
                {
                    fd.Kind = FdKind.FdPtySlave;
                    fd.PtyIndex = index;
                }
                image = Read(master, session, first.Pid, firstFd, slaveHolders.Count + ttyHolders.Count > 0, who);
                if (session != 0 && !leaderHere)
                {
                    warnings.Add($"{who} is the controlling terminal of session {session}, whose leader is not in the checkpoint: it comes back as no session's");
                    image.Session = 0;
                    image.ForegroundGroup = 0;
                }
            }
            catch (Exception e) when (e is KernelCallException or IOException)
            {
                throw new CheckpointException($"process {first.Pid}: {who} could not be read: {e.Message}");
            }
            image.MasterPath = firstFd.Path;
            image.SlaveDirectory = slavePath[..slavePath.LastIndexOf('/')];
            made.Add((image, [.. holders.Concat(slaveHolders).Concat(ttyHolders).Select(h => h.Process.Pid)]));
        }
        foreach (var (image, holders) in made)
        {
            var everyone = holders.Distinct().ToList();
            int maker = everyone.Count == 1 ? everyone[0] : ProcessTree.CommonAncestor(everyone, byPid);
            byPid[maker].Ptys.Add(image);
        }
        return warnings;
    }

    /// <summary>The terminal's state through <paramref name="master"/>, its queues read out and put back.</summary>
    /// <param name="master">Amber's copy of the master.</param>
    /// <param name="session">The session it controls (its leader's PID; 0: none), read already.</param>
    /// <param name="pid">The process whose master fd it is.</param>
    /// <param name="fd">That fd.</param>
    /// <param name="slaveHeld">A process of the checkpoint holds its slave (or /dev/tty in its session).</param>
    /// <param name="who">How messages name it.</param>
    private static PtyImage Read(PtyMaster master, int session, int pid, FdImage fd, bool slaveHeld, string who)
    {
        if (master.LineDiscipline is var discipline && discipline != 0)
            throw new UnsupportedResourceException(pid, who, $"a terminal with line discipline {discipline} (only N_TTY, 0, is saved)");
        var termios = master.Termios;
        // Before anything is read out: a refusal leaves every byte where it was.
        if (slaveHeld && PtyMaster.Canonical(termios) && master.SlaveQueued is > 0 and var lines)
            throw new UnsupportedResourceException(pid, who, $"a terminal in canonical mode with {lines} bytes of typed lines its reader has not read yet") { Passing = true };
        var image = new PtyImage
        {
            Index = fd.PtyIndex, Termios = ByteString.CopyFrom(termios), WindowSize = ByteString.CopyFrom(master.WindowSize),
            PacketMode = master.PacketMode, Locked = master.Locked, Session = session, ForegroundGroup = master.ForegroundGroup,
            // Before the slave is opened from here (which would make it open again).
            SlaveClosed = !slaveHeld && master.SlaveClosed,
        };
        // A slave never opened has nothing to say; one opened and closed may have left output.
        if (slaveHeld || image.SlaveClosed)
        {
            var toMaster = master.TakeFromMaster();
            var toSlave = slaveHeld ? master.TakeFromSlave() : [];
            master.PutForSlave(toSlave);
            master.PutForMaster(toMaster);
            image.ToMaster = ByteString.CopyFrom(toMaster);
            image.ToSlave = ByteString.CopyFrom(toSlave);
        }
        return image;
    }
}
