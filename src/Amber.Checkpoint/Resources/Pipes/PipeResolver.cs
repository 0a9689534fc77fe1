using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Proc;
using Google.Protobuf;

namespace Amber.Checkpoint.Resources.Pipes;

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
                byPid[ProcessTree.CommonAncestor(holders, byPid)].SharedPipes.Add(image);
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
                ulong id = Sharing.NextSharedFileId(byPid.Values);
                byPid[ProcessTree.CommonAncestor(holders, byPid)].SharedFiles.Add(new SharedFile { Id = id, Recipe = file[0].Fd.Clone() });
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
}
