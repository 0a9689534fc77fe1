using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Proc;
using Google.Protobuf;

namespace Amber.Checkpoint.Files;

/// <summary>
/// Decides what each pipe of a checkpointed tree is, once every process's fds are known:
/// <list type="bullet">
/// <item>held by one process only: rebuilt inside it (<see cref="ProcessImage.Pipes"/>);</item>
/// <item>held by several processes of the tree: rebuilt once, by their lowest common ancestor, before
/// it forks them, so they inherit one pipe (<see cref="ProcessImage.SharedPipes"/>) — a shell pipeline;</item>
/// <item>an end no process holds any more (a daemon whose parent exited): rebuilt, then that end closed;</item>
/// <item>an end held by a process outside the tree: stdio (fds 0-2) is external; elsewhere refused,
/// naming that process.</item>
/// </list>
/// Each end is rebuilt as one open file; an end opened again (through /proc/PID/fd, with flags of its
/// own) is another open file of it, opened again that way at restore — once for every process that
/// shares it. The bytes queued in a pipe are read without consuming them (tee) from one of its read ends.
/// </summary>
public static class PipeResolver
{
    private const uint AccessMode = OpenFlags.AccessMode, ReadOnly = OpenFlags.ReadOnly, WriteOnly = OpenFlags.WriteOnly, ReadWrite = OpenFlags.ReadWrite, Direct = OpenFlags.Direct;

    public static void Resolve(IReadOnlyList<ProcessImage> processes)
    {
        var byPid = processes.ToDictionary(p => p.Pid);
        var tree = processes.Select(p => p.Pid).ToHashSet();
        var ends = processes.SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdPipe).Select(f => (Process: p, Fd: f)))
            .GroupBy(e => e.Fd.PipeId);
        foreach (var pipe in ends)
        {
            bool Reads((ProcessImage, FdImage Fd) e) => (e.Fd.Flags & AccessMode) != WriteOnly;
            bool Writes((ProcessImage, FdImage Fd) e) => (e.Fd.Flags & AccessMode) != ReadOnly;
            bool readHeld = pipe.Any(Reads), writeHeld = pipe.Any(Writes);
            if (!(readHeld && writeHeld) && OutsideHolder(pipe.Key, readHeld ? WriteOnly : ReadOnly, tree) is { } holder)
            {
                foreach (var (process, fd) in pipe)
                {
                    if (fd.Fd > 2)
                        throw new UnsupportedResourceException(process.Pid, $"fd {fd.Fd} ({fd.Description})", $"a pipe whose other end process {holder} holds, outside the checkpointed processes");
                    fd.Kind = FdKind.FdExternal;
                    fd.PipeId = 0;
                    fd.PipeWriteEnd = false;
                }
                continue;
            }
            var (data, capacity, reads) = readHeld
                ? ProcessFiles.PeekPipePackets(pipe.First(Reads).Process.Pid, pipe.First(Reads).Fd.Fd)
                : ([], ProcessFiles.PipeCapacity(pipe.First().Process.Pid, pipe.First().Fd.Fd), []);
            var image = new PipeImage { Id = pipe.Key, Capacity = (uint)capacity, Data = ByteString.CopyFrom(data), NoReader = !readHeld, NoWriter = !writeHeld };
            if (pipe.Any(e => Writes(e) && (e.Fd.Flags & Direct) != 0))
                image.Packets.AddRange(reads.Select(n => (uint)n));
            var holders = pipe.Select(e => e.Process.Pid).Distinct().ToList();
            if (holders.Count == 1)
                byPid[holders[0]].Pipes.Add(image);
            else
                byPid[CommonAncestor(holders, byPid)].SharedPipes.Add(image);
            SeparateOpenFiles([.. pipe], byPid);
        }
    }

    /// <summary>
    /// The open files of one pipe: those of each end that are one open file (dup'ed, inherited) are
    /// found by kcmp; for each end, the first whose access mode is the end's own is the end the pipe
    /// is made with, every other is opened again from it (<see cref="FdImage.PipeReopened"/>) — by
    /// the process itself, or, shared by several, once by their common ancestor (a shared file).
    /// </summary>
    private static void SeparateOpenFiles(List<(ProcessImage Process, FdImage Fd)> pipe, Dictionary<int, ProcessImage> byPid)
    {
        var files = new List<List<(ProcessImage Process, FdImage Fd)>>();
        foreach (var e in pipe.Where(e => !e.Fd.HasSharesDescriptionWith))
        {
            var same = files.FirstOrDefault(f => (f[0].Fd.Flags & AccessMode) == (e.Fd.Flags & AccessMode)
                && ProcessFiles.SameDescription(f[0].Process.Pid, f[0].Fd.Fd, e.Process.Pid, e.Fd.Fd));
            if (same is null)
                files.Add([e]);
            else
                same.Add(e);
        }
        var made = new HashSet<uint>();
        foreach (var file in files)
        {
            uint mode = file[0].Fd.Flags & AccessMode;
            bool reopened = mode is not (ReadOnly or WriteOnly) || !made.Add(mode);
            foreach (var (_, fd) in file)
            {
                fd.PipeReopened = reopened;
                fd.PipeWriteEnd = mode == WriteOnly;
            }
            var holders = file.Select(e => e.Process.Pid).Distinct().ToList();
            if (reopened && holders.Count > 1)
            {
                ulong id = SharingCheck.NextSharedFileId(byPid.Values);
                byPid[CommonAncestor(holders, byPid)].SharedFiles.Add(new SharedFile { Id = id, Recipe = file[0].Fd.Clone() });
                foreach (var (_, fd) in file)
                    fd.SharedFile = id;
            }
        }
    }

    /// <summary>A process outside the tree that holds the pipe open for reading or writing (<paramref name="mode"/>), named; null if none does.</summary>
    private static string? OutsideHolder(ulong pipeId, uint mode, IReadOnlySet<int> tree)
    {
        var found = ProcFs.FindFdHolder($"pipe:[{pipeId}]", flags => (flags & AccessMode) == mode || (flags & AccessMode) == ReadWrite, tree);
        if (found is not { } holder)
            return null;
        string name = ProcFs.TryReadStatus(holder.Pid, out var status) && status is not null ? $" ('{status.Name}')" : "";
        return $"{holder.Pid}{name} (as fd {holder.Fd})";
    }

    /// <summary>
    /// Named FIFOs are reopened by path at restore; the bytes queued in each are saved once, read
    /// (without consuming them) through a read end the tree holds, or one amber opens for the purpose.
    /// </summary>
    public static void ResolveFifos(IReadOnlyList<ProcessImage> processes)
    {
        foreach (var fifo in processes.SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdFifo).Select(f => (Process: p, Fd: f))).GroupBy(e => e.Fd.PipeId))
        {
            var first = fifo.First();
            var reader = fifo.FirstOrDefault(e => (e.Fd.Flags & 3) != 1);
            var (data, capacity) = reader.Fd is not null
                ? ProcessFiles.PeekPipe(reader.Process.Pid, reader.Fd.Fd)
                : ProcessFiles.PeekFifo(first.Fd.Path);
            first.Process.Fifos.Add(new PipeImage { Id = fifo.Key, Capacity = (uint)capacity, Data = ByteString.CopyFrom(data) });
        }
    }

    /// <summary>
    /// Connected unix sockets: when both ends are in the checkpoint, the pair is rebuilt once, by the
    /// common ancestor of its holders, with what waits at each end and the shutdown state of each.
    /// One whose peer was closed — or is held outside, which sees it closed once the checkpoint ends
    /// it — is rebuilt as a pair whose second end is closed once the first's queue is filled. One
    /// whose connection waits on a listening socket of the checkpoint is made again unconnected, and
    /// connected again in its turn at restore.
    /// </summary>
    /// <param name="reconnectTo">
    /// Listening sockets outside (a group's registration socket): a connection to one is saved as an
    /// unpaired socket connected to that path again at restore.
    /// </param>
    /// <returns>Warnings: connections to processes outside, which come back closed.</returns>
    public static List<string> ResolveSocketPairs(IReadOnlyList<ProcessImage> processes, IReadOnlySet<string> reconnectTo)
    {
        var warnings = new List<string>();
        var byPid = processes.ToDictionary(p => p.Pid);
        var tree = processes.Select(p => p.Pid).ToHashSet();
        var ends = processes.SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdSocketPair).Select(f => (Process: p, Fd: f))).ToList();
        var inodes = ends.Select(e => e.Fd.SocketInode).ToHashSet();
        foreach (var (process, fd) in ends.Where(e => !inodes.Contains(e.Fd.SocketPeer) && UnixPath(e.Fd.Socket.PeerAddress.Span) is { } path && reconnectTo.Contains(path)).ToList())
        {
            if (ProcessFiles.QueuedBytes(process.Pid, fd.Fd) > 0)
                throw new UnsupportedResourceException(process.Pid, $"fd {fd.Fd} ({fd.Description})", $"a connection to {UnixPath(fd.Socket.PeerAddress.Span)} with bytes not read yet");
            fd.Kind = FdKind.FdSocket;
            fd.SocketPeer = 0;
            fd.Socket.LocalAddress = ByteString.Empty;
            ends.Remove((process, fd));
        }
        var listeners = processes.SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdSocket && f.Socket.Waiting.Count > 0)).ToList();
        var waiting = listeners.SelectMany(l => l.Socket.Waiting).ToHashSet();
        foreach (var (process, fd) in ends.Where(e => waiting.Contains(e.Fd.SocketInode)).ToList())
        {
            fd.Kind = FdKind.FdSocket;
            fd.SocketPeer = 0;
            fd.Socket.PeerAddress = ByteString.Empty;
            ends.Remove((process, fd));
        }
        foreach (var listener in listeners.DistinctBy(l => l.SocketInode))
        {
            // A client outside is connected again by amber and closed: the program accepts a connection whose peer left.
            var kept = listener.Socket.Waiting.Select(c => inodes.Contains(c) ? c : 0).ToList();
            listener.Socket.Waiting.Clear();
            listener.Socket.Waiting.AddRange(kept);
        }
        foreach (var (process, fd) in ends.Where(e => !inodes.Contains(e.Fd.SocketPeer)))
        {
            if (fd.SocketPeer != 0 && ProcFs.FindFdHolder($"socket:[{fd.SocketPeer}]", _ => true, tree) is { } holder)
                warnings.Add($"process {process.Pid}: fd {fd.Fd} ({fd.Description}) is connected to process {holder.Pid} outside the checkpoint; after a restore its peer has closed it");
            fd.SocketPeer = 0;
        }
        foreach (var pair in ends.GroupBy(e => e.Fd.SocketPeer == 0 ? e.Fd.SocketInode : Math.Min(e.Fd.SocketInode, e.Fd.SocketPeer)))
        {
            foreach (var (_, fd) in pair)
            {
                fd.SocketPair = pair.Key;
                fd.SocketPairSecond = fd.SocketInode != pair.Key;
            }
            var first = pair.First(e => !e.Fd.SocketPairSecond);
            var second = pair.FirstOrDefault(e => e.Fd.SocketPairSecond);
            var image = new SocketPairImage
            {
                Id = pair.Key, Type = first.Fd.Socket.Type, SecondGone = second.Fd is null,
                FirstShutdown = UnixSocketPeers.Describe(first.Fd.SocketInode).Shutdown,
                SecondShutdown = second.Fd is null ? 0 : UnixSocketPeers.Describe(second.Fd.SocketInode).Shutdown,
            };
            SocketQueueDumper.Dump(first.Process, first.Fd, image.FirstQueue, processes);
            if (second.Fd is not null)
                SocketQueueDumper.Dump(second.Process, second.Fd, image.SecondQueue, processes);
            byPid[CommonAncestor([.. pair.Select(e => e.Process.Pid).Distinct()], byPid)].SocketPairs.Add(image);
        }
        // Datagrams waiting on unix datagram sockets that are not one end of a pair: saved with the first holder.
        foreach (var socket in processes.SelectMany(p => p.Fds.Where(f => f.Kind == FdKind.FdSocket && f.Socket.Family == SocketState.Unix
                && f.Socket.Type == SocketState.Datagram).Select(f => (Process: p, Fd: f))).GroupBy(e => e.Fd.SocketInode))
        {
            var (process, fd) = socket.First();
            SocketQueueDumper.Dump(process, fd, fd.Socket.Queue, processes);
        }
        return warnings;
    }

    /// <summary>
    /// The lowest process of the tree that is an ancestor of (or one of) all <paramref name="pids"/>;
    /// 0 — the forest of a group checkpoint (<see cref="ImageNames.Forest"/>) — when they are in different trees.
    /// </summary>
    public static int CommonAncestor(IReadOnlyList<int> pids, IReadOnlyDictionary<int, ProcessImage> byPid)
    {
        List<int> Chain(int pid)
        {
            var chain = new List<int>();
            for (int at = pid; at != 0 && byPid.ContainsKey(at); at = byPid[at].Ppid)
                chain.Add(at);
            return chain;
        }
        var common = Chain(pids[0]);
        foreach (int pid in pids.Skip(1))
        {
            var chain = Chain(pid).ToHashSet();
            common = [.. common.Where(chain.Contains)];
        }
        if (common.Count > 0)
            return common[0];
        if (!byPid.ContainsKey(0))
            throw new InvalidOperationException($"processes {string.Join(", ", pids)} have no common ancestor and there is no forest");
        return 0;
    }

    /// <summary>The file-system path of a unix address, or null (unnamed or abstract).</summary>
    private static string? UnixPath(ReadOnlySpan<byte> address)
    {
        if (address.Length <= 2 || address[2] == 0)
            return null;
        var path = address[2..];
        int nul = path.IndexOf((byte)0);
        return System.Text.Encoding.UTF8.GetString(nul < 0 ? path : path[..nul]);
    }
}
