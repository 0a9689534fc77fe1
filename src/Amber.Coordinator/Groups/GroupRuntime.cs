using System.Text.Json;
using Amber.Coordinator.Scheduling;
using Amber.Coordinator.Security;
using Amber.Coordinator.Store;
using Amber.Coordinator.Table;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Groups;

/// <summary>
/// One group as the coordinator runs it: its settings (saved to group.json at every change), its
/// cgroup (every process of the group is in it, whatever forks or daemonizes), its process table,
/// its store, and one operation at a time (launch, attach, checkpoint, restore, stop).
/// </summary>
public sealed class GroupRuntime : IDisposable
{
    private readonly AmberHome _home;
    private static readonly TimeSpan KillTimeout = TimeSpan.FromSeconds(20);
    private readonly Dictionary<int, long> _firstSeen = [];

    private GroupRuntime(AmberHome home, GroupConfig config, Cgroup cgroup, Func<GroupRuntime, int, uint, string?> attach, ILogger logger)
    {
        _home = home;
        Config = config;
        Cgroup = cgroup;
        Store = new GroupStore(config.Store);
        Table = ProcessTable.OpenForWriting(home.ProcessTable(config.Name), config.Name, config.OwnerGid);
        Registrations = new Registrations(config.Name, home.RegistrationSocket(config.Name), (pid, uid) => attach(this, pid, uid),
            pid => Cgroup.Processes().Contains(pid), logger);
        Schedule = new CheckpointSchedule(config.EverySeconds);
    }

    public GroupConfig Config { get; }

    /// <summary>The group's owner as a requester: what a restart on failure restores for.</summary>
    public Requester Owner => Config.Owner == 0 ? Requester.Root : new(Config.Owner, Config.OwnerGid, [.. Config.OwnerGroups.Prepend(Config.OwnerGid).Distinct()], Config.OwnerCapabilities);

    public Cgroup Cgroup { get; }

    public GroupStore Store { get; }

    public ProcessTable Table { get; }

    /// <summary>Programs of the group that use the client library.</summary>
    public Registrations Registrations { get; }

    /// <summary>Held for the length of an operation on the group: they never overlap.</summary>
    public SemaphoreSlim Busy { get; } = new(1, 1);

    public CheckpointSchedule Schedule { get; }

    public MergePolicy MergePolicy => new(Config.MergeAfter, Config.MergeAboveBytes);

    /// <summary>The latest checkpoint's chain is long enough to be folded; the monitor starts the merge.</summary>
    public bool MergePending { get; set; }

    public Checkpoint.RetentionPolicy Retention => new(Config.KeepLast, TimeSpan.FromSeconds(Config.KeepForSeconds));

    /// <summary>A checkpoint or merge changed the store and the group has a retention policy; the monitor applies it.</summary>
    public bool RetentionPending { get; set; }

    /// <summary>
    /// Write trackers of the group's processes since the latest checkpoint (by pid: the userfaultfd,
    /// whose holding keeps the tracking alive, and the ranges it tracks). Valid only for the next
    /// incremental checkpoint after that latest one: anything else drops them.
    /// </summary>
    public Dictionary<int, (Kernel.Files.HeldFile Uffd, IReadOnlyList<(ulong Start, ulong End)> Ranges)> Trackers { get; } = [];

    public void DropTrackers()
    {
        foreach (var (uffd, _) in Trackers.Values)
            uffd.Dispose();
        Trackers.Clear();
    }

    /// <param name="attach">Adds a process tree for a registered program: null, or why not.</param>
    /// <param name="logger">The log of its registration socket.</param>
    /// <remarks>A user's own store (not the default one) is made beforehand, by that user (<see cref="Security.UserAccess"/>).</remarks>
    public static GroupRuntime Create(AmberHome home, GroupConfig config, Func<GroupRuntime, int, uint, string?> attach, ILogger logger)
    {
        StateFiles.Directory(home.GroupDirectory(config.Name), StateFiles.Reachable);
        if (config.Store == home.DefaultStore(config.Name))
            MakeDefaultStore(config.Store, config.Owner, config.OwnerGid);
        else
            Directory.CreateDirectory(config.Store);
        var group = new GroupRuntime(home, config, Kernel.Processes.Cgroup.Create(home.Cgroup(config.Name)), attach, logger);
        group.Save();
        return group;
    }

    /// <summary>The default store, in the coordinator's own directory: if missing, made by it and given to the group's owner (0700).</summary>
    public static void MakeDefaultStore(string store, uint owner, uint ownerGid)
    {
        if (Directory.Exists(store))
            return;
        Directory.CreateDirectory(store);
        if (owner != StateFiles.Self && FileStat.TryGetNoFollow(store, out var st))
            PathAttributes.Set(store, symlink: false, owner, ownerGid, (uint)(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute), st.AtimeNs, st.MtimeNs);
    }

    /// <summary>The output log the group's programs write to: its owner's, 0600 (made if missing; an earlier group's of another user is replaced).</summary>
    public void PrepareLog() => StateFiles.Give(_home.GroupLog(Config.Name), Config.Owner, Config.OwnerGid, StateFiles.Private);

    /// <summary>A group found again from its group.json (a coordinator restarted).</summary>
    public static GroupRuntime Load(AmberHome home, string configPath, Func<GroupRuntime, int, uint, string?> attach, ILogger logger)
    {
        var config = JsonSerializer.Deserialize(File.ReadAllText(configPath), GroupJson.Default.GroupConfig)
            ?? throw new IOException($"{configPath} is empty");
        if (!AmberHome.IsValidGroupName(config.Name) || home.GroupConfig(config.Name) != configPath)
            throw new IOException($"{configPath} names group '{config.Name}'");
        return new GroupRuntime(home, config, Kernel.Processes.Cgroup.Create(home.Cgroup(config.Name)), attach, logger);
    }

    public void Save() => StateFiles.Write(_home.GroupConfig(Config.Name), JsonSerializer.Serialize(Config, GroupJson.Default.GroupConfig));

    /// <summary>The live processes of the group now (zombies not counted).</summary>
    public List<int> LiveProcesses() =>
        [.. Cgroup.Processes().Where(p => ProcFs.TryReadStatus(p, out var s) && s!.State is not ('Z' or 'X'))];

    /// <summary>
    /// Rewrites the process table from the cgroup and /proc. A tree root found in the cgroup that
    /// the group did not know (a daemon that double-forked) becomes one of its roots: watched, and
    /// restarted with the group.
    /// </summary>
    public void RefreshTable()
    {
        var pids = Cgroup.Processes();
        var inGroup = pids.ToHashSet();
        var records = new List<ProcessRecord>();
        long now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        var saved = Config.LastCheckpointPids.ToHashSet();
        var parents = new Dictionary<int, int>();
        var stats = new Dictionary<int, (ParsedStat Stat, ProcStatus Status)>();
        foreach (int pid in pids)
        {
            try
            {
                stats[pid] = (ProcFs.ReadStat(pid), ProcFs.ReadStatus(pid));
                parents[pid] = stats[pid].Stat.ParentPid;
            }
            catch (TargetGoneException)
            {
            }
        }
        foreach (var (pid, (stat, status)) in stats)
        {
            int tree = pid;
            for (int hops = 0; parents.TryGetValue(tree, out int parent) && inGroup.Contains(parent) && hops < 4096; hops++)
                tree = parent;
            if (!_firstSeen.TryGetValue(pid, out long first))
                _firstSeen[pid] = first = now;
            var state = stat.State switch
            {
                'T' or 't' => ProcessState.Stopped,
                'Z' or 'X' => ProcessState.Zombie,
                _ => ProcessState.Running,
            };
            records.Add(new ProcessRecord(pid, stat.ParentPid, tree, state, tree == pid, first,
                saved.Contains(pid) ? Config.LastCheckpointUnixMs : 0, Config.Restarts, 0, status.Threads, status.Name) { NsPid = status.NsPids is [.., int inner] ? inner : pid });
        }
        foreach (int gone in _firstSeen.Keys.Where(p => !stats.ContainsKey(p)).ToList())
            _firstSeen.Remove(gone);
        records.Sort((a, b) => a.Pid.CompareTo(b.Pid));
        var newRoots = records.Where(r => r.IsTreeRoot && r.State != ProcessState.Zombie && !Config.Roots.Contains(r.Pid)).Select(r => r.Pid).ToList();
        if (newRoots.Count > 0)
        {
            Config.Roots.AddRange(newRoots);
            Save();
        }
        Table.Write(records, new TableHeader(Config.Name, Environment.ProcessId, Config.Restarts, now, Config.LastCheckpointUnixMs, Config.LastCheckpoint));
    }

    /// <summary>Ends every process of the group (cgroup.kill) and waits until none is left.</summary>
    /// <param name="unplug">
    /// The group is to be restored at once (a restart, a part put back at a checkpoint): with a network
    /// of its own, its interface goes first (<see cref="GroupNetwork.Unplug"/>).
    /// </param>
    public void KillAll(bool unplug = false)
    {
        if (unplug && Config.Net.Length > 0 && Cgroup.Processes() is [int member, ..])
            GroupNetwork.Unplug(member);
        var timeout = KillTimeout;
        var killFile = Path.Combine(Cgroup.Path, "cgroup.kill");
        if (File.Exists(killFile))
            File.WriteAllText(killFile, "1");
        else
            foreach (int pid in Cgroup.Processes())
                Spawner.Kill(pid, Signals.SIGKILL);
        var deadline = DateTime.UtcNow + timeout;
        while (Cgroup.Populated)
        {
            if (DateTime.UtcNow > deadline)
                throw new IOException($"group {Config.Name}: processes {string.Join(", ", Cgroup.Processes())} are still there {timeout.TotalSeconds:0} s after being killed");
            Thread.Sleep(5);
        }
    }

    /// <summary>Closes the table and the registration socket; Busy is left to whoever holds it.</summary>
    public void Dispose()
    {
        DropTrackers();
        Registrations.Dispose();
        Table.Dispose();
    }
}
