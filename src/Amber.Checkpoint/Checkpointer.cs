using System.Diagnostics;
using Amber.Checkpoint.Dump;
using Amber.Checkpoint.Files;
using Amber.Checkpoint.Freeze;
using Amber.Checkpoint.Memory;
using Amber.Image;
using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Memory;
using Amber.Kernel.Proc;
using Amber.Kernel.Processes;

namespace Amber.Checkpoint;

/// <summary>
/// Checkpoint of a process tree, or of a group of trees: Preflight → Freeze (one barrier) → dump
/// thread state → dump files → dump memory → resolve what processes share → write the process images
/// → commit → end or resume the processes.
/// The checkpoint is committed before the processes are ended, so nothing is ever lost; on any failure
/// (or cancellation) every process is resumed exactly as it was and the partial image is removed.
/// </summary>
public static class Checkpointer
{
    public static CheckpointResult Checkpoint(int pid, CheckpointOptions options, CancellationToken cancel = default) =>
        TracerThread.Run("amber-checkpoint", () =>
        {
            Preflight(pid);
            return Run(() => FrozenGroup.Freeze(pid, CheckMember), $"process {pid}", group: null, options, cancel);
        });

    /// <summary>Every process of the group's cgroup, stopped at one barrier (the cgroup freezer), saved as one checkpoint.</summary>
    public static CheckpointResult CheckpointGroup(string group, Cgroup cgroup, CheckpointOptions options, CancellationToken cancel = default) =>
        TracerThread.Run("amber-checkpoint", () => Run(() => FrozenGroup.Freeze(cgroup, CheckMember), $"group {group}", group, options, cancel));

    private static CheckpointResult Run(Func<FrozenGroup> freeze, string what, string? group, CheckpointOptions options, CancellationToken cancel)
    {
        var total = Stopwatch.StartNew();
        var trace = new PhaseTrace("checkpoint");
        var parent = options.Parent is { } p ? ParentCheckpoint.Open(p, options.ImagesDirectory) : null;
        using var writer = CheckpointWriter.Create(options.ImagesDirectory);
        cancel.ThrowIfCancellationRequested();

        var frozenAt = Stopwatch.StartNew();
        using var frozen = freeze();
        trace.Mark("freeze");
        long pages = 0, kept = 0;
        var members = frozen.Members.ToList();
        int root = members[0].Pid;
        List<string> sharingWarnings;
        try
        {
            Faults.Check(FaultPoint.AfterFreeze);
            if (members.Any(m => m.Pid == Environment.ProcessId))
                throw new CheckpointException($"{what} contains amber itself");
            var dumped = new List<ProcessImage>();
            var saved = new SavedObjects();
            foreach (var member in members)
            {
                if (member.Frozen is { } process)
                {
                    var (written, keptNow) = DumpProcess(process, member.ParentPid, writer, dumped, saved, parent, trace, cancel);
                    pages += written;
                    kept += keptNow;
                }
                else
                    writer.WriteMessage(ImageNames.Process(member.Pid), ImageFileKind.Process, ZombieImage(member));
            }
            SysvIpcDumper.Dump(frozen, dumped[0]);
            // What several trees share has no common ancestor among them: the forest stands in for one.
            var forest = new ProcessImage { Pid = 0, Ppid = -1, Mm = new MmImage() };
            var resolved = frozen.Trees.Count > 1 ? [.. dumped, forest] : dumped;
            PipeResolver.Resolve(resolved);
            PipeResolver.ResolveSocketPairs(resolved, options.ReconnectTo);
            PipeResolver.ResolveFifos(resolved);
            sharingWarnings = SharingCheck.Check(resolved);
            // Only the earlier checkpoints whose copies are still used are named (and so kept).
            var sources = parent?.Prune([.. dumped, forest]) ?? [];
            foreach (var image in dumped)
                writer.WriteMessage(ImageNames.Process(image.Pid), ImageFileKind.Process, image);
            bool hasForest = !forest.Equals(new ProcessImage { Pid = 0, Ppid = -1, Mm = new MmImage() });
            if (hasForest)
                writer.WriteMessage(ImageNames.Forest, ImageFileKind.Process, forest);
            Faults.Check(FaultPoint.BeforeCommit);
            cancel.ThrowIfCancellationRequested();
            writer.Commit(new Manifest
            {
                FormatVersion = ImageFormat.FormatVersion,
                AmberVersion = ImageNames.AmberVersion,
                CreatedUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(),
                KernelRelease = File.ReadAllText("/proc/sys/kernel/osrelease").Trim(),
                RootPid = root,
                Pids = { members.Select(m => m.Pid) },
                TreeRoots = { frozen.Trees.Select(t => t.RootPid) },
                Group = group ?? "",
                Forest = hasForest,
                Parent = parent?.Name ?? "",
                Sources = { sources },
            });
            trace.Mark("commit");
        }
        catch (Exception e) when (e is not CheckpointException and not OperationCanceledException and not TargetGoneException)
        {
            var problems = frozen.Resume();
            throw new CheckpointException(
                $"checkpoint of {what} failed: {e.Message}; {(members.Count > 1 ? "the processes were" : "the process was")} resumed{(problems.Count > 0 ? $" with problems: {string.Join("; ", problems)}" : "")}", e);
        }

        var warnings = new List<string>(sharingWarnings);
        if (options.LeaveRunning)
            warnings.AddRange(frozen.Resume());
        else
            frozen.Kill();
        frozenAt.Stop();
        trace.Mark(options.LeaveRunning ? "resume" : "kill");
        long bytes = new DirectoryInfo(options.ImagesDirectory).EnumerateFiles().Sum(f => f.Length);
        return new CheckpointResult(root, [.. members.Select(m => m.Pid)], pages, bytes, frozen.Barrier, frozenAt.Elapsed, total.Elapsed, warnings)
        {
            PagesKept = kept,
            Parent = parent?.Name,
        };
    }

    private static void Preflight(int pid)
    {
        if (pid <= 1)
            throw new CheckpointException($"refusing to checkpoint process {pid}");
        if (pid == Environment.ProcessId)
            throw new CheckpointException("refusing to checkpoint amber itself");
        if (!ProcFs.Exists(pid))
            throw new TargetGoneException(pid);
        var status = ProcFs.ReadStatus(pid);
        if (status.Tgid != pid)
            throw new CheckpointException($"{pid} is a thread of process {status.Tgid}; checkpoint the process");
        if (status.State is 'Z' or 'X')
            throw new CheckpointException($"process {pid} is a zombie");
    }

    /// <summary>What every live process of the tree is checked for, just before it is frozen.</summary>
    private static void CheckMember(int pid)
    {
        var status = ProcFs.ReadStatus(pid);
        if (status.TracerPid != 0)
            throw new CheckpointException($"process {pid} is already traced by process {status.TracerPid}");
        ResourceChecks.Check(pid);
    }

    private static ProcessImage ZombieImage(TreeMember zombie)
    {
        var stat = ProcFs.ReadStat(zombie.Pid);
        return new ProcessImage
        {
            Pid = zombie.Pid, Ppid = zombie.ParentPid, Pgid = stat.ProcessGroup, Sid = stat.Session,
            Comm = ProcFs.ReadStatus(zombie.Pid).Name, Zombie = true, ExitStatus = zombie.ExitStatus,
        };
    }

    /// <returns>Pages written, and pages kept from the parent checkpoint.</returns>
    private static (long Written, long Kept) DumpProcess(
        FrozenProcess frozen, int parent, CheckpointWriter writer, List<ProcessImage> dumped, SavedObjects saved, ParentCheckpoint? earlier,
        PhaseTrace trace, CancellationToken cancel)
    {
        int pid = frozen.Pid;
        // Re-checked under the freeze: the process may have changed just before it stopped.
        ResourceChecks.Check(pid);

        using var memory = new RemoteMemory(pid);
        var stat = ProcFs.ReadStat(pid);
        var status = ProcFs.ReadStatus(pid);
        var image = NewImage(pid, stat, status);
        image.Ppid = parent;
        image.Stopped = frozen.WasStopped;
        var mapsBefore = ProcFs.ReadMaps(pid);
        ThreadStateDumper.Dump(frozen, memory, mapsBefore, image);
        trace.Mark("thread state");
        Faults.Check(FaultPoint.AfterThreadState);
        cancel.ThrowIfCancellationRequested();

        FileDumper.Dump(pid, image);
        foreach (var m in ProcFs.ReadMaps(pid))
            image.Mm.Vmas.Add(VmaClassifier.Classify(pid, m));

        using var pageMap = new PageMap(pid);
        var pageFile = writer.CreatePageFile(image.PageFile);
        var dumper = new MemoryDumper(memory, pageMap, pageFile, cancel, earlier?.MemoryOf(pid));
        trace.Mark("files and mappings");
        dumper.Dump(image.Mm);
        ShmemDumper.Dump(pid, image, pageFile, saved, earlier, cancel);
        DeletedFileDumper.Dump(pid, image, pageFile, saved, earlier, cancel);
        trace.Mark("memory");
        dumped.Add(image);
        return (dumper.PagesWritten, dumper.PagesKept);
    }

    private static ProcessImage NewImage(int pid, ParsedStat stat, ProcStatus status)
    {
        string exe = ProcFs.ReadExe(pid);
        if (exe.EndsWith(" (deleted)", StringComparison.Ordinal) || !FileStat.TryGet(exe, out var exeStat))
            throw new UnsupportedResourceException(pid, $"its executable {exe}", "a deleted file");
        string root = ProcFs.ReadRoot(pid);
        if (root != "/")
            throw new UnsupportedResourceException(pid, $"its root directory {root}", "a chroot");
        string cwd = ProcFs.ReadCwd(pid);
        if (cwd.EndsWith(" (deleted)", StringComparison.Ordinal))
            throw new UnsupportedResourceException(pid, $"its working directory {cwd}", "a deleted directory");
        var image = new ProcessImage
        {
            Pid = pid,
            Ppid = stat.ParentPid,
            Pgid = stat.ProcessGroup,
            Sid = stat.Session,
            Comm = status.Name,
            ExePath = exe,
            ExeIdentity = new FileIdentity { Device = exeStat.Device, Inode = exeStat.Inode, Size = exeStat.Size, MtimeNs = exeStat.MtimeNs },
            Cwd = cwd,
            Root = root,
            Umask = status.Umask,
            Personality = ProcFs.ReadPersonality(pid),
            PageFile = ImageNames.Pages(pid),
            Creds = new Credentials { Uids = { status.Uids }, Gids = { status.Gids }, Groups = { status.Groups }, Capabilities = { status.Capabilities } },
            Mm = new MmImage
            {
                StartCode = stat.StartCode, EndCode = stat.EndCode, StartData = stat.StartData, EndData = stat.EndData,
                StartBrk = stat.StartBrk, StartStack = stat.StartStack, ArgStart = stat.ArgStart, ArgEnd = stat.ArgEnd,
                EnvStart = stat.EnvStart, EnvEnd = stat.EnvEnd, Auxv = Google.Protobuf.ByteString.CopyFrom(ProcFs.ReadAuxv(pid)),
                PageSize = (ulong)Environment.SystemPageSize,
            },
        };
        return image;
    }
}
