using Amber.Checkpoint.Resources.Memory;
using Amber.Image;
using Amber.Checkpoint.Resources.Sockets;
using Amber.Image.Schema;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// The processes of a checkpoint, as trees: each tree's root, and each process's children in saved
/// order. A group checkpoint holds several trees, and what they share in its forest
/// (<see cref="ImageNames.Forest"/>), recreated by a process that is every root's parent until they run.
/// </summary>
public sealed class RestoreTree
{
    private readonly Dictionary<int, List<ProcessImage>> _children;

    private readonly Dictionary<int, int> _hostIds = [];

    private readonly HashSet<int> _made = [];

    private RestoreTree(List<ProcessImage> images, List<ProcessImage> roots, ProcessImage? forest, int inheritCount, bool newPidNamespace)
    {
        Images = images;
        NewPidNamespace = newPidNamespace;
        Roots = roots;
        Root = roots[0];
        Forest = forest;
        var rootPids = roots.Select(r => r.Pid).ToHashSet();
        _children = images.Where(i => !rootPids.Contains(i.Pid)).GroupBy(i => i.Ppid).ToDictionary(g => g.Key, g => g.ToList());
        // Pipes shared by several processes travel from their creator to the others in "slots": fds
        // above every saved fd number of every process, the same numbers everywhere.
        SlotBase = images.SelectMany(i => i.Fds).Select(f => f.Fd).DefaultIfEmpty(2).Max() + inheritCount + 64;
        var creators = forest is null ? images : [forest, .. images];
        int k = 0;
        foreach (var pipe in creators.SelectMany(i => i.SharedPipes))
        {
            Slots[(pipe.Id, false)] = SlotBase + k++;
            Slots[(pipe.Id, true)] = SlotBase + k++;
        }
        foreach (var file in creators.SelectMany(i => i.SharedFiles))
            FileSlots[file.Id] = SlotBase + k++;
        foreach (var pair in creators.SelectMany(i => i.SocketPairs))
        {
            PairSlots[(pair.Id, false)] = SlotBase + k++;
            PairSlots[(pair.Id, true)] = SlotBase + k++;
        }
        foreach (var pty in creators.SelectMany(i => i.Ptys))
        {
            Ptys[pty.Index] = pty;
            PtySlots[pty.Index] = SlotBase + k++;
        }
        foreach (var shmem in creators.Where(i => !i.Zombie).SelectMany(i => i.Mm.Shmem.Where(s => s.InSlot)))
            ObjectSlots[(ObjectKind.Shmem, shmem.Id)] = SlotBase + k++;
        foreach (var deleted in creators.SelectMany(i => i.DeletedFiles.Where(d => d.InSlot)))
            ObjectSlots[(ObjectKind.Deleted, deleted.Id)] = SlotBase + k++;
    }

    /// <summary>The forest of a group checkpoint (pid 0, no memory or threads): what its trees share; null if nothing.</summary>
    public ProcessImage? Forest { get; }

    /// <summary>The tree roots, in saved order (the first is <see cref="Root"/>).</summary>
    public IReadOnlyList<ProcessImage> Roots { get; }

    /// <summary>Every image that creates objects for others: the forest, then every process.</summary>
    public IEnumerable<ProcessImage> Creators => Forest is null ? Images : [Forest, .. Images];

    /// <summary>
    /// Shared memory objects and deleted files recreated once, as an fd, by the process that holds
    /// them in its image, for itself and the processes below it that use them.
    /// </summary>
    public Dictionary<(ObjectKind Kind, ulong Id), int> ObjectSlots { get; } = [];

    /// <summary>A path that opens the object in slot of a process that has the slot (a new open file of it).</summary>
    public string SlotPath(ObjectKind kind, ulong id) => $"/proc/self/fd/{ObjectSlots[(kind, id)]}";

    public Dictionary<(ulong Id, bool Second), int> PairSlots { get; } = [];

    /// <summary>The checkpoint's pseudo-terminals, by their index at checkpoint.</summary>
    public Dictionary<uint, PtyImage> Ptys { get; } = [];

    /// <summary>The slot each pseudo-terminal's master is handed down in, by its index at checkpoint.</summary>
    public Dictionary<uint, int> PtySlots { get; } = [];

    /// <summary>The index each pseudo-terminal came back under (its own, unless another terminal had it), by its index at checkpoint.</summary>
    public Dictionary<uint, int> PtyIndexes { get; } = [];

    /// <summary>The pseudo-terminals made again, as amber reaches them (their slaves held open from here until the release).</summary>
    public List<Kernel.Files.PtyMaster> Terminals { get; } = [];

    /// <summary>The path of the slave of pseudo-terminal <paramref name="index"/> (its index at checkpoint), as made again.</summary>
    public string SlavePath(uint index) => $"{Ptys[index].SlaveDirectory}/{PtyIndexes[index]}";

    /// <summary>Lets go of amber's hold on the pseudo-terminals made (before the release: every process holds its own by then).</summary>
    public void ReleaseTerminals()
    {
        foreach (var terminal in Terminals)
            terminal.Dispose();
        Terminals.Clear();
    }

    /// <summary>Named FIFOs by inode at checkpoint, with their queued bytes.</summary>
    public Dictionary<ulong, PipeImage> Fifos => field ??= Images.SelectMany(i => i.Fifos).ToDictionary(f => f.Id);

    /// <summary>
    /// The second ends of socket pairs whose peer had closed (<see cref="SocketPairImage.SecondGone"/>):
    /// held by amber from their making until the first end's queue is filled, then closed.
    /// </summary>
    public Dictionary<ulong, Kernel.Files.HeldFile> GoneEnds { get; } = [];

    /// <summary>The TCP connections made again, held in repair mode until every process is built.</summary>
    public TcpRepairs TcpRepairs { get; } = new();

    /// <summary>FIFOs already refilled by a process restored earlier (the bytes go in once).</summary>
    public HashSet<ulong> FilledFifos { get; } = [];

    public Dictionary<ulong, int> FileSlots { get; } = [];

    public int SlotBase { get; }

    public Dictionary<(ulong PipeId, bool WriteEnd), int> Slots { get; } = [];

    public int SlotEnd => SlotBase + Slots.Count + FileSlots.Count + PairSlots.Count + PtySlots.Count + ObjectSlots.Count;

    public bool HasSlots => SlotEnd > SlotBase;

    public IReadOnlyList<ProcessImage> Images { get; }

    public ProcessImage Root { get; }

    /// <summary>The mounts of a mount namespace they had of their own (made again in a new one); null if they had none.</summary>
    public MountsImage? Mounts { get; private init; }

    /// <summary>
    /// The processes had a PID namespace of their own: they are made in a new one, with the ids they
    /// had in theirs (the image's), and have other ids in amber's (<see cref="HostId"/>).
    /// </summary>
    public bool NewPidNamespace { get; }

    /// <summary>
    /// The id amber knows process or thread <paramref name="id"/> (the image's id) by, to trace it and
    /// read it in /proc: the same, unless it is in a new PID namespace (once made, <see cref="Made"/>).
    /// Calls injected into the processes use the image's ids, theirs.
    /// </summary>
    public int HostId(int id) =>
        !NewPidNamespace ? id : _hostIds.TryGetValue(id, out int host) ? host : throw new InvalidOperationException($"process {id} is not made yet");

    /// <summary>Process or thread <paramref name="id"/> (the image's id) was made, as <paramref name="hostId"/> in amber's namespace.</summary>
    public void Made(int id, int hostId)
    {
        _made.Add(id);
        if (NewPidNamespace)
            _hostIds[id] = hostId;
    }

    /// <summary>Every PID and TID of the image (the image's ids: a zombie's, every thread's).</summary>
    public HashSet<int> ImageIds => field ??= [.. Images.SelectMany(i => i.Zombie ? [i.Pid] : i.Threads.Select(t => t.Tid))];

    /// <summary>
    /// The processes and threads of the tree that <paramref name="path"/> is a file of, in their /proc
    /// (/proc/PID/..., /proc/PID/task/TID/...; an fd on /proc/self/stat reads /proc/PID/stat): they
    /// come back with the restore, so the file is there only once they are. Empty for any other path.
    /// </summary>
    public IEnumerable<int> ProcFileOf(string path)
    {
        if (!path.StartsWith("/proc/", StringComparison.Ordinal))
            yield break;
        var parts = path["/proc/".Length..].Split('/');
        if (IdOf(parts[0]) is not { } process)
            yield break;
        yield return process;
        if (parts.Length > 2 && parts[1] == "task" && IdOf(parts[2]) is { } thread)
            yield return thread;
    }

    private int? IdOf(string part) =>
        int.TryParse(part, System.Globalization.NumberStyles.None, null, out int id) && ImageIds.Contains(id) ? id : null;

    /// <summary>Whether every process and thread <paramref name="path"/> is a file of (<see cref="ProcFileOf"/>) is made.</summary>
    public bool ProcFileReady(string path) => ProcFileOf(path).All(_made.Contains);

    /// <summary>Every PID and TID the restore will claim (in amber's PID namespace; none in a new one).</summary>
    public IEnumerable<int> AllIds => NewPidNamespace ? [] : ImageIds;

    /// <summary>Every id that must be free in amber's PID namespace: <see cref="AllIds"/> and the placeholders' (none in a new one, where all are).</summary>
    public IEnumerable<int> IdsToClaim => NewPidNamespace ? [] : AllIds.Concat(Resources.ProcessGroups.Sessions.PlaceholderIds(Images));

    /// <summary>Every address range any process will map: the trampoline must be free in all of them.</summary>
    public IReadOnlyList<(ulong Start, ulong End)> AllRanges =>
        [.. Images.Where(i => !i.Zombie).SelectMany(i => i.Mm.Vmas.Select(v => (v.Start, v.End)))];

    public IReadOnlyList<ProcessImage> ChildrenOf(int pid) => _children.TryGetValue(pid, out var c) ? c : [];

    public static RestoreTree Load(CheckpointReader reader, int inheritCount)
    {
        var manifest = reader.Manifest;
        var rootPids = manifest.TreeRoots.Count > 0 ? manifest.TreeRoots.ToList() : [manifest.RootPid];
        if (manifest.Pids.Count == 0 || manifest.Pids[0] != manifest.RootPid || rootPids[0] != manifest.RootPid || rootPids.Distinct().Count() != rootPids.Count)
            throw new CheckpointException($"{reader.Directory}: the manifest does not start with its root process");
        var images = new List<ProcessImage>();
        foreach (int pid in manifest.Pids)
        {
            var image = reader.ReadMessage(ImageNames.Process(pid), ImageFileKind.Process, ProcessImage.Parser);
            if (image.Pid != pid)
                throw new CheckpointException($"{ImageNames.Process(pid)} describes process {image.Pid}");
            bool isRoot = rootPids.Contains(pid);
            if (!isRoot && images.All(i => i.Pid != image.Ppid))
                throw new CheckpointException($"process {pid}'s parent {image.Ppid} is not restored before it");
            if (isRoot && image.Zombie)
                throw new CheckpointException($"the root process {pid} is a zombie");
            images.Add(image);
        }
        if (images.Select(i => i.Pid).Distinct().Count() != images.Count)
            throw new CheckpointException($"{reader.Directory}: a process appears twice");
        if (rootPids.Any(r => images.All(i => i.Pid != r)))
            throw new CheckpointException($"{reader.Directory}: a tree root is not among the processes");
        ProcessImage? forest = null;
        if (manifest.Forest)
        {
            forest = reader.ReadMessage(ImageNames.Forest, ImageFileKind.Process, ProcessImage.Parser);
            if (forest.Pid != 0 || forest.Mm is null || forest.Threads.Count > 0 || forest.Fds.Count > 0 || forest.Mm.Vmas.Count > 0)
                throw new CheckpointException($"{reader.Directory}: {ImageNames.Forest} is not a forest");
        }
        bool newPidNamespace = manifest.Namespaces?.Pid == true;
        if (newPidNamespace && !rootPids.Contains(1))
            throw new CheckpointException($"{reader.Directory}: the processes had a PID namespace of their own, but none of their trees is rooted at its PID 1");
        var tree = new RestoreTree(images, [.. rootPids.Select(r => images.First(i => i.Pid == r))], forest, inheritCount, newPidNamespace)
        {
            Mounts = manifest.Namespaces?.Mount == true ? Resources.Isolation.MountRestorer.Load(reader) : null,
        };
        CheckMessages(reader, [.. tree.Creators]);
        foreach (var image in images)
        {
            foreach (var fd in image.Fds.Where(f => f.Kind == FdKind.FdSocketPair && !tree.PairSlots.ContainsKey((f.SocketPair, f.SocketPairSecond))))
                throw new CheckpointException($"{reader.Directory}: fd {fd.Fd} of process {image.Pid} is one end of a socket pair the image does not hold");
            foreach (var fd in image.Fds.Where(f => f.Kind == FdKind.FdFifo))
            {
                if (!tree.Fifos.ContainsKey(fd.PipeId))
                    throw new CheckpointException($"{reader.Directory}: fd {fd.Fd} of process {image.Pid} is a FIFO the image does not hold");
                if (!Kernel.Files.FileStat.TryGet(fd.Path, out var st) || !st.IsFifo)
                    throw new CheckpointException($"cannot restore process {image.Pid}: fd {fd.Fd} was the FIFO {fd.Path}, which is no longer there");
            }
        }
        return tree;
    }

    /// <summary>Every descriptor in flight on a unix socket names an fd the image restores, or a file to open again.</summary>
    private static void CheckMessages(CheckpointReader reader, List<ProcessImage> images)
    {
        var fds = images.Where(i => !i.Zombie).SelectMany(i => i.Fds.Select(f => (i.Pid, f.Fd))).ToHashSet(); // the forest has none
        var pairEnds = images.SelectMany(i => i.Fds.Where(f => f.Kind == FdKind.FdSocketPair).Select(f => (f.SocketPair, f.SocketPairSecond))).ToHashSet();
        foreach (var pair in images.SelectMany(i => i.SocketPairs))
        {
            if (!pairEnds.Contains((pair.Id, false)) || !(pair.SecondGone || pairEnds.Contains((pair.Id, true))))
                throw new CheckpointException($"{reader.Directory}: socket pair {pair.Id} has an end no process holds");
        }
        var messages = images.SelectMany(i => i.SocketPairs).SelectMany(p => p.FirstQueue.Concat(p.SecondQueue))
            .Concat(images.SelectMany(i => i.Fds.Where(f => f.Kind == FdKind.FdSocket)).SelectMany(f => f.Socket.Queue));
        foreach (var carried in messages.SelectMany(m => m.Fds))
        {
            if (carried.File is { } file)
            {
                if (!file.Path.StartsWith('/') || file.Kind is not (FdKind.FdRegular or FdKind.FdDirectory or FdKind.FdDevNull or FdKind.FdCharacterDevice))
                    throw new CheckpointException($"{reader.Directory}: a descriptor in flight is {file.Kind} '{file.Path}', which cannot be opened again");
            }
            else if (!fds.Contains((carried.HolderPid, carried.HolderFd)))
            {
                throw new CheckpointException($"{reader.Directory}: a descriptor in flight is fd {carried.HolderFd} of process {carried.HolderPid}, which the image does not restore");
            }
        }
    }
}
