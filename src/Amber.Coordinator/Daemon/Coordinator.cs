using System.Globalization;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Amber.Checkpoint.Storage;
using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;
using Amber.Coordinator.Store;
using Amber.Coordinator.Workers;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;
using Amber.Sockets;

namespace Amber.Coordinator.Daemon;

/// <summary>
/// The coordinator daemon (amber daemon): owns every group of its home. It answers requests on its
/// control socket (only from root and a group's owner, told apart by peer credentials), and every
/// 100 ms reaps its children (it is a subreaper: whatever a group orphans comes to it), refreshes the
/// process tables, takes scheduled checkpoints, and restores a group whose member died when the group
/// asks for it. Checkpoints and restores run in worker processes, never in the daemon itself.
/// </summary>
public sealed class Coordinator : IDisposable
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);
    private static readonly TimeSpan KillTimeout = TimeSpan.FromSeconds(20);
    private readonly AmberHome _home = AmberHome.Current;
    private readonly Dictionary<string, GroupRuntime> _groups = [];
    private readonly object _lock = new();
    private readonly ChildReaper _reaper = new();
    private readonly CancellationTokenSource _stop = new();
    private Socket? _listener;
    private ExclusiveLock? _pidLock;

    /// <summary>Runs until asked to shut down (amber daemon-stop, SIGTERM).</summary>
    public int Run()
    {
        StateFiles.Directory(_home.RunDirectory, StateFiles.Open);
        StateFiles.Directory(Path.Combine(_home.RunDirectory, "groups"), StateFiles.Open);
        StateFiles.Directory(_home.StateDirectory, StateFiles.Reachable);
        StateFiles.Directory(_home.GroupsDirectory, StateFiles.Reachable);
        if (File.Exists(_home.DaemonLog))
            File.SetUnixFileMode(_home.DaemonLog, StateFiles.Private);
        _pidLock = TakeLock();
        Spawner.BecomeSubreaper();
        foreach (var config in Directory.GetFiles(_home.GroupsDirectory, "group.json", SearchOption.AllDirectories))
        {
            try
            {
                var group = GroupRuntime.Load(_home, config, AttachFor);
                _groups[group.Config.Name] = group;
                Log($"group {group.Config.Name}: found again ({group.LiveProcesses().Count} processes, last checkpoint {(group.Config.LastCheckpoint.Length > 0 ? group.Config.LastCheckpoint : "none")})");
                RemoveLeftovers(group);
            }
            catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
            {
                Log($"skipping {config}: {e.Message}");
            }
        }
        File.Delete(_home.ControlSocket);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(_home.ControlSocket));
        // Anyone may connect; each request is checked against the caller's credentials.
        File.SetUnixFileMode(_home.ControlSocket, (UnixFileMode)0x1b6);
        _listener.Listen(64);
        new Thread(Accept) { IsBackground = true, Name = "amberd-accept" }.Start();
        Log($"coordinator {Environment.ProcessId} listening on {_home.ControlSocket}");
        using var term = System.Runtime.InteropServices.PosixSignalRegistration.Create(System.Runtime.InteropServices.PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            _stop.Cancel();
        });
        while (!_stop.IsCancellationRequested)
        {
            Monitor();
            _stop.Token.WaitHandle.WaitOne(Tick);
        }
        Log("coordinator stopping (the groups run on)");
        return 0;
    }

    public void Dispose()
    {
        // A coordinator that lost the race for the lock never bound the socket: it is the other one's.
        if (_listener is not null)
        {
            _listener.Dispose();
            try { File.Delete(_home.ControlSocket); } catch (IOException) { }
        }
        foreach (var group in _groups.Values)
            group.Dispose();
        if (_pidLock is not null)
        {
            RemovePidFile();
            _pidLock.Dispose();
        }
        _stop.Dispose();
    }

    private static void Log(string message) => CoordinatorLog.Write(message);

    private string PidFile => Path.Combine(_home.RunDirectory, "amberd.pid");

    /// <summary>One coordinator per home: a second one fails here instead of fighting the first.</summary>
    private ExclusiveLock TakeLock()
    {
        var held = ExclusiveLock.TryTake(Path.Combine(_home.RunDirectory, "amberd.lock"))
            ?? throw new IOException($"another coordinator runs for {_home.RunDirectory}");
        File.WriteAllText(PidFile, $"{Environment.ProcessId}\n");
        return held;
    }

    /// <summary>Removes the pid file on the way out, still holding the lock: only if it names us (nobody else wrote it since).</summary>
    private void RemovePidFile()
    {
        try
        {
            if (File.ReadAllText(PidFile).Trim() == Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
                File.Delete(PidFile);
        }
        catch (IOException)
        {
            // Already gone: nothing to remove.
        }
    }

    private void Accept()
    {
        while (!_stop.IsCancellationRequested)
        {
            Socket connection;
            try
            {
                connection = _listener!.Accept();
            }
            catch (Exception) when (_stop.IsCancellationRequested)
            {
                return;
            }
            catch (SocketException e)
            {
                Log($"accept: {e.Message}");
                continue;
            }
            new Thread(() => Serve(connection)) { IsBackground = true, Name = "amberd-request" }.Start();
        }
    }

    private void Serve(Socket connection)
    {
        using (connection)
        {
            ControlResponse response;
            try
            {
                var who = Requester.Of(connection);
                var line = new LineReader(connection).ReadLine();
                var request = line is null ? null : JsonSerializer.Deserialize(line, ControlJson.Default.ControlRequest);
                response = request is null ? ControlResponse.Failure("an empty request") : Handle(request, who);
            }
            catch (Exception e) when (e is IOException or JsonException or SocketException or KernelCallException or TargetGoneException or UnauthorizedAccessException or InvalidOperationException)
            {
                response = ControlResponse.Failure(e.Message.ReplaceLineEndings(" "));
            }
            catch (Exception e)
            {
                // Anyone may send a request: nothing in one may end the coordinator.
                Log($"a request failed: {e}");
                response = ControlResponse.Failure($"internal error ({e.GetType().Name}): {e.Message.ReplaceLineEndings(" ")}");
            }
            try
            {
                connection.Send(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(response, ControlJson.Default.ControlResponse) + "\n"));
            }
            catch (SocketException)
            {
                // The CLI went away: the work is done all the same.
            }
        }
    }

    private ControlResponse Handle(ControlRequest request, Requester who)
    {
        if (request.Op == "shutdown")
        {
            if (!who.IsRoot)
                return ControlResponse.Failure("only root may stop the coordinator");
            _stop.Cancel();
            return new ControlResponse { Ok = true, Stderr = ["coordinator stopping; groups keep running"] };
        }
        if (!AmberHome.IsValidGroupName(request.Group))
            return ControlResponse.Failure($"'{request.Group}' is not a group name ({AmberHome.GroupNameRule})");
        if (request.Op == "run" && GroupSettings.Problem(request) is { } invalid)
            return ControlResponse.Failure(invalid);
        GroupRuntime? group;
        lock (_lock)
            _groups.TryGetValue(request.Group, out group);
        if (group is null && request.Op == "run")
        {
            var config = GroupSettings.ForNewGroup(request, request.Store.Length > 0 ? request.Store : _home.DefaultStore(request.Group), who);
            // Not under the lock: the access check waits for a helper process, which the monitor (taking the lock) reaps.
            if ((StorageProblem(config.Storage, config.Store, who.Uid) ?? AccessProblem(config)) is { } problem)
                return ControlResponse.Failure(problem);
            lock (_lock)
            {
                if (!_groups.TryGetValue(request.Group, out group))
                {
                    group = GroupRuntime.Create(_home, config, AttachFor);
                    RememberStore(config);
                    group.Save();
                    _groups[group.Config.Name] = group;
                    Log($"group {group.Config.Name}: created (store {config.Store}{(config.EverySeconds > 0 ? $", every {config.EverySeconds} s" : "")}{(config.RestartOnFailure ? ", restart on failure" : "")})");
                }
            }
        }
        if (group is null)
            return ControlResponse.Failure($"there is no group '{request.Group}'");
        if (!who.IsRoot && who.Uid != group.Config.Owner)
            return ControlResponse.Failure($"group {group.Config.Name} belongs to uid {group.Config.Owner}; only it and root may use it");
        group.Busy.Wait();
        try
        {
            return request.Op switch
            {
                "run" => Run(group, request, who),
                "attach" => Attach(group, request.Pid, who.Uid),
                "detach" => Detach(group, request.Pid),
                "checkpoint" => Checkpoint(group, request.Stop, request.Full),
                "restore" => Restore(group, request.From, who),
                "images" => Images(group),
                "merge" => Merge(group, request.From),
                "verify" => Verify(group),
                "stop" => Stop(group),
                "remove" => Remove(group),
                _ => ControlResponse.Failure($"unknown request '{request.Op}'"),
            };
        }
        finally
        {
            if (request.Op != "remove")
            {
                group.RefreshTable();
                group.Busy.Release();
            }
        }
    }

    /// <summary>amber run: the group takes the settings given that can change (or refuses those that cannot), then the program starts in it.</summary>
    private ControlResponse Run(GroupRuntime group, ControlRequest request, Requester who)
    {
        if (GroupSettings.Refusal(group.Config, request) is { } refusal)
            return ControlResponse.Failure(refusal);
        var changes = GroupSettings.Apply(group.Config, request);
        if (changes.Count > 0)
        {
            group.NextCheckpoint = group.Config.EverySeconds > 0 ? DateTime.UtcNow.AddSeconds(group.Config.EverySeconds) : DateTime.MaxValue;
            group.Save();
            Log($"group {group.Config.Name}: {string.Join(", ", changes)}");
        }
        var launched = Launch(group, request, who.Uid, who.Gid);
        launched.Stderr.InsertRange(0, changes.Select(c => $"group {group.Config.Name}: {c}"));
        return launched;
    }

    /// <summary>
    /// Starts a program in the group: amber's exec helper joins the group's cgroup (so the program
    /// and all it ever forks belong to it), becomes the caller's user, and becomes the program.
    /// </summary>
    private ControlResponse Launch(GroupRuntime group, ControlRequest request, uint uid, uint gid)
    {
        if (request.Command.Count == 0)
            return ControlResponse.Failure("no command to run");
        var helper = new List<string> { "internal", "exec", "--cgroup", group.Cgroup.Path };
        if (uid != 0)
            helper.AddRange(["--uid", uid.ToString(CultureInfo.InvariantCulture), "--gid", gid.ToString(CultureInfo.InvariantCulture)]);
        var (path, args) = SelfCommand.With([.. helper, "--", .. request.Command]);
        string log = _home.GroupLog(group.Config.Name);
        group.PrepareLog();
        // The client library finds its group's registration socket through these.
        var environment = request.Environment.Where(e => !e.StartsWith("AMBER_GROUP=", StringComparison.Ordinal) && !e.StartsWith("AMBER_REGISTRATION=", StringComparison.Ordinal))
            .Append($"AMBER_GROUP={group.Config.Name}").Append($"AMBER_REGISTRATION={group.Registrations.SocketPath}").ToList();
        int pid = Spawner.Spawn(new SpawnOptions(path, args)
        {
            Environment = environment,
            WorkingDirectory = request.WorkingDirectory.Length > 0 ? request.WorkingDirectory : "/",
            Opens = [(0, "/dev/null", 0), (1, log, 0x441), (2, log, 0x441)],
            NewSession = true,
        });
        // The helper joins the cgroup first thing; the program runs once it is in.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!group.Cgroup.Processes().Contains(pid))
        {
            if (_reaper.TryGetEnd(pid, out var end) || DateTime.UtcNow > deadline)
                return ControlResponse.Failure($"'{request.Command[0]}' did not start in group {group.Config.Name}{(end.Tid != 0 ? $" ({end})" : "")}; see {log}");
            Thread.Sleep(2);
        }
        group.Config.Roots.Add(pid);
        group.Config.Launched.Add(pid);
        group.Save();
        Log($"group {group.Config.Name}: launched {string.Join(' ', request.Command)} as process {pid}");
        return new ControlResponse { Ok = true, Stdout = [pid.ToString(CultureInfo.InvariantCulture)] };
    }

    /// <summary>ADD from a registered program: attach a tree, if the program's user may.</summary>
    private string? AttachFor(GroupRuntime group, int pid, uint uid)
    {
        group.Busy.Wait();
        try
        {
            var response = Attach(group, pid, uid);
            return response.Ok ? null : response.Error;
        }
        finally
        {
            group.RefreshTable();
            group.Busy.Release();
        }
    }

    /// <summary>Adds a running process tree: every process of it moves into the group's cgroup (forks meanwhile are caught by re-listing).</summary>
    private static ControlResponse Attach(GroupRuntime group, int pid, uint uid)
    {
        if (!ProcFs.TryReadStatus(pid, out var status) || status is null || status.State is 'Z' or 'X')
            return ControlResponse.Failure($"process {pid} does not exist");
        // All its uids (a set-user-id program's effective one too): the coordinator checkpoints it as root.
        if (uid != 0 && status.Uids.Any(u => u != uid))
            return ControlResponse.Failure($"process {pid} runs as uids {string.Join(' ', status.Uids)} (real, effective, saved, filesystem); a group of uid {uid} takes only processes wholly its own");
        if (group.Config.Roots.Contains(pid))
            return ControlResponse.Failure($"process {pid} is already in group {group.Config.Name}");
        for (int pass = 0; pass < 100; pass++)
        {
            var tree = Tree(pid);
            var outside = tree.Where(p => !group.Cgroup.Processes().Contains(p)).ToList();
            if (outside.Count == 0)
            {
                group.Config.Roots.Add(pid);
                group.Save();
                Log($"group {group.Config.Name}: attached process tree {pid} ({tree.Count} processes)");
                return new ControlResponse { Ok = true, Stderr = [$"attached process {pid} and its {tree.Count - 1} descendant(s) to group {group.Config.Name}"] };
            }
            foreach (int p in outside)
            {
                try { group.Cgroup.Add(p); }
                catch (TargetGoneException) { }
            }
        }
        return ControlResponse.Failure($"process tree {pid} kept changing while being attached");
    }

    /// <summary>Takes a tree out of the group: its processes go back to the root cgroup and are no longer checkpointed.</summary>
    private static ControlResponse Detach(GroupRuntime group, int pid)
    {
        if (!group.Config.Roots.Contains(pid))
            return ControlResponse.Failure($"process {pid} is not the root of a tree of group {group.Config.Name}");
        var root = Kernel.Processes.Cgroup.Open("") ?? throw new IOException("no cgroup v2 root");
        foreach (int p in Tree(pid))
        {
            try { root.Add(p); }
            catch (TargetGoneException) { }
        }
        group.Config.Roots.Remove(pid);
        group.Config.Launched.Remove(pid);
        group.Save();
        Log($"group {group.Config.Name}: detached process tree {pid}");
        return new ControlResponse { Ok = true, Stderr = [$"detached process {pid} from group {group.Config.Name}"] };
    }

    /// <summary>
    /// Why the storage a group declares cannot be: not a directory, another user's (the coordinator
    /// captures and rolls back what it names), nested, or the store itself.
    /// </summary>
    private static string? StorageProblem(IReadOnlyList<string> storage, string store, uint uid)
    {
        foreach (string dir in storage)
        {
            if (!FileStat.TryGetNoFollow(dir, out var st) || !st.IsDirectory)
                return $"storage {dir} is not a directory";
            if (uid != 0 && st.Uid != uid)
                return $"storage {dir} belongs to uid {st.Uid}; only its owner or root may make it a group's storage";
            if (storage.FirstOrDefault(other => StoragePaths.IsBelow(dir, other)) is { } outer)
                return $"storage {dir} is inside storage {outer}: declare one of them";
            if (store == dir || StoragePaths.IsBelow(dir, store))
                return $"storage {dir} would hold its own checkpoints ({store}): choose another --images";
        }
        return null;
    }

    /// <summary>
    /// For a user's new group: the user may write its store (made by the user if missing) and its
    /// storage, asked as that user. The default store is the coordinator's to make for it, unless one
    /// is left there by another user's group of that name.
    /// </summary>
    private string? AccessProblem(GroupConfig config)
    {
        if (config.Owner == 0)
            return null;
        bool ownStore = config.Store != _home.DefaultStore(config.Name);
        if (!ownStore && FileStat.TryGetNoFollow(config.Store, out var left) && left.Uid != config.Owner)
            return $"the default store {config.Store} holds another user's checkpoints (uid {left.Uid}): choose another --images";
        if (UserAccess.Check(_reaper, _home.DaemonLog, config.Owner, config.OwnerGid, ownStore ? config.Store : null, config.Storage) is { } denied)
            return $"{denied}: a group of uid {config.Owner} may use only a store and storage it may write";
        return null;
    }

    /// <summary>Which directory the store of a user's group is now: the one its owner was found allowed to write.</summary>
    private static void RememberStore(GroupConfig config)
    {
        if (config.Owner != 0 && FileStat.TryGet(config.Store, out var st))
            (config.StoreDevice, config.StoreInode) = (st.Device, st.Inode);
    }

    /// <summary>
    /// Before the coordinator works on a user's group's store or storage (as root): they are still what
    /// the owner was allowed. The owner may rename and replace what is theirs: a storage directory
    /// must still be one of the owner's (not a link, not another's through a link along its path); a
    /// store that is not the directory approved any more (removed and made again, or replaced) must
    /// be writable by the owner again, asked as the owner (made again by the owner if gone).
    /// </summary>
    private string? Confirm(GroupRuntime group)
    {
        var config = group.Config;
        if (config.Owner == 0)
            return null;
        foreach (string dir in config.Storage)
        {
            if (!FileStat.TryGetNoFollow(dir, out var link) || link.IsSymlink || !FileStat.TryGet(dir, out var st) || !st.IsDirectory || st.Uid != config.Owner)
                return $"group {config.Name}: its storage {dir} is no longer a directory of uid {config.Owner}'s; nothing is done";
        }
        if (StoreUnchanged(config))
            return null;
        bool ownStore = config.Store != _home.DefaultStore(config.Name);
        if (!ownStore)
            GroupRuntime.MakeDefaultStore(config.Store, config.Owner, config.OwnerGid);
        if (UserAccess.Check(_reaper, _home.DaemonLog, config.Owner, config.OwnerGid, ownStore ? config.Store : null, ownStore ? [] : [config.Store]) is { } denied)
            return $"group {config.Name}: its store {config.Store} is not the directory it was when the group was made, and {denied}; nothing is done";
        RememberStore(config);
        group.Save();
        Log($"group {config.Name}: store {config.Store} made again, or replaced: uid {config.Owner} may write it");
        return null;
    }

    /// <summary>The store is the directory approved for the group (any store of root's is).</summary>
    private static bool StoreUnchanged(GroupConfig config) =>
        config.Owner == 0 || FileStat.TryGet(config.Store, out var now) && now.IsDirectory && (now.Device, now.Inode) == (config.StoreDevice, config.StoreInode);

    /// <summary>Interrupted checkpoints and merges of the group's store, removed if no worker of the group runs (and the store is still the one approved).</summary>
    private void RemoveLeftovers(GroupRuntime group)
    {
        if (!StoreUnchanged(group.Config))
            return;
        var removed = Leftovers.Remove(group.Store, _home.WorkerLock(group.Config.Name));
        if (removed.Count > 0)
            Log($"group {group.Config.Name}: removed what interrupted checkpoints left in its store: {string.Join(" ", removed)}");
    }

    /// <summary>A group checkpoint: incremental after the group's latest one unless <paramref name="full"/> (or there is none).</summary>
    private ControlResponse Checkpoint(GroupRuntime group, bool stop, bool full)
    {
        if (group.LiveProcesses().Count == 0)
            return ControlResponse.Failure($"group {group.Config.Name} has no running process to checkpoint");
        if (Confirm(group) is { } changed)
            return ControlResponse.Failure(changed);
        RemoveLeftovers(group);
        string images = group.Store.NextPath();
        string id = Path.GetFileName(images);
        // Programs that asked to be told get their chance to prepare, within the deadline.
        var prepared = group.Registrations.BeforeCheckpoint(id, TimeSpan.FromSeconds(group.Config.DeadlineSeconds));
        var args = new List<string>
        {
            "checkpoint-group", "--group", group.Config.Name, "--cgroup", group.Cgroup.Path, "--images", images,
            "--reconnect", group.Registrations.SocketPath, "--lock", _home.WorkerLock(group.Config.Name),
        };
        if (stop)
            args.Add("--stop");
        if (group.Config.Compress is { Length: > 0 } and not "none")
            args.AddRange(["--compress", group.Config.Compress]);
        foreach (string dir in group.Config.Storage)
            args.AddRange(["--storage", dir]);
        // The coordinator's own files are never captured or rolled back, wherever they are.
        if (group.Config.Storage.Count > 0)
        {
            foreach (string own in new[] { _home.StateDirectory, _home.RunDirectory, _home.ShmDirectory })
                args.AddRange(["--storage-exclude", own]);
        }
        var latest = group.Store.Latest();
        if (!full && latest is not null)
            args.AddRange(["--parent", latest.Path]);
        // The trackers kept since the latest checkpoint go to the worker; new ones come back.
        var (ours, theirs) = FdChannel.Pair();
        WorkerReport report;
        using (ours)
        {
            using (theirs)
            {
                if (!full && latest is not null && latest.Id == group.Config.LastCheckpoint)
                {
                    foreach (var (pid, (uffd, ranges)) in group.Trackers)
                        TrackerMessages.Send(ours, pid, uffd, ranges);
                }
                else
                {
                    // Not of use to this checkpoint: let go now, or the memory they keep registered
                    // could not be registered again by the worker's new ones (EBUSY).
                    group.DropTrackers();
                }
                TrackerMessages.End(ours);
                report = Worker.Run(_reaper, _home.DaemonLog, [(3, theirs.Fd)], [.. args, "--channel", "3"]);
            }
            group.DropTrackers(); // their write state was read and reset by the worker: only what comes back holds
            if (report.Ok && !stop)
            {
                foreach (var (pid, tracker) in TrackerMessages.ReceiveAll(ours))
                    group.Trackers[pid] = tracker;
            }
        }
        if (!report.Ok)
        {
            Log($"group {group.Config.Name}: checkpoint failed: {report.Error}");
            group.Registrations.AfterCheckpoint(id); // they run on as before
            return ControlResponse.Failure(report.Error);
        }
        report.Warnings.AddRange(prepared);
        if (!stop)
            group.Registrations.AfterCheckpoint(id);
        if (group.Store.Find(id) is { } taken && MergeDue(group, taken))
            group.MergePending = true; // folded in the background once this operation is over
        group.Config.LastCheckpoint = id;
        group.Config.LastCheckpointUnixMs = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        group.Config.LastCheckpointPids = report.Processes;
        if (stop)
        {
            // Ended on purpose: not a failure.
            group.Config.Roots.Clear();
            group.Config.Launched.Clear();
        }
        group.Save();
        string line = string.Create(CultureInfo.InvariantCulture,
            $"checkpointed group {group.Config.Name} as {id}{(report.Parent.Length > 0 ? $" (incremental after {report.Parent}: {report.Pages} pages written, {report.PagesKept} kept, {report.PagesSkipped} of them known unwritten{(report.PagesCopiedBeforeTheFreeze > 0 ? $", {report.PagesCopiedBeforeTheFreeze} copied before the freeze" : "")})" : " (full)")}: {report.Processes.Count} processes, {report.Bytes / 1048576.0:0.0} MiB{(report.Storage.Length > 0 ? $", storage {report.Storage}" : "")}, barrier {report.BarrierMs:0.0} ms, frozen {report.FrozenMs:0} ms, total {report.TotalMs:0} ms");
        Log(line);
        return new ControlResponse { Ok = true, Stdout = [id], Stderr = [.. report.Warnings.Select(w => $"warning: {w}"), line] };
    }

    /// <summary>
    /// The merge policy: a chain is folded once its latest checkpoint refers to MergeAfter earlier
    /// ones, or once its incremental checkpoints hold more than MergeAboveBytes together (many
    /// changed pages make a chain costly to keep and slow to restore long before it is long).
    /// </summary>
    private static bool MergeDue(GroupRuntime group, StoredCheckpoint taken)
    {
        if (taken.Sources.Count == 0)
            return false;
        if (taken.Sources.Count >= group.Config.MergeAfter)
            return true;
        if (group.Config.MergeAboveBytes <= 0)
            return false;
        var stored = group.Store.List().ToDictionary(c => c.Id);
        long incremental = taken.Bytes + taken.Sources.Select(stored.GetValueOrDefault).Where(c => c is { Parent.Length: > 0 }).Sum(c => c!.Bytes);
        return incremental > group.Config.MergeAboveBytes;
    }

    private ControlResponse Restore(GroupRuntime group, string from, Requester who)
    {
        if (Confirm(group) is { } changed)
            return ControlResponse.Failure(changed);
        var live = group.LiveProcesses();
        if (live.Count > 0)
            return ControlResponse.Failure($"group {group.Config.Name} is running ({live.Count} processes); stop it first (amber stop --group {group.Config.Name})");
        var checkpoint = from.Length > 0 ? group.Store.Find(from) : group.Store.Latest();
        if (checkpoint is null)
            return ControlResponse.Failure(from.Length > 0 ? $"group {group.Config.Name} has no checkpoint {from}" : $"group {group.Config.Name} has no checkpoint yet");
        return RestoreFrom(group, checkpoint.Path, checkpoint.Id, who);
    }

    /// <summary>Restores the group from a checkpoint, bringing back only processes whose credentials <paramref name="who"/> holds.</summary>
    private ControlResponse RestoreFrom(GroupRuntime group, string images, string id, Requester who)
    {
        string[] admit = who.IsRoot ? [] : ["--for", who.ToArgument()];
        var report = Worker.Run(_reaper, _home.DaemonLog, ["restore-group", "--images", images, "--cgroup", group.Cgroup.Path, "--lock", _home.WorkerLock(group.Config.Name), .. admit]);
        if (!report.Ok)
        {
            Log($"group {group.Config.Name}: restore from {id} failed: {report.Error}");
            return ControlResponse.Failure(report.Error);
        }
        group.DropTrackers(); // they tracked the memory of processes that are gone
        group.Config.Roots = report.Roots;
        group.Config.Launched = [.. report.Roots]; // the worker's orphans: the coordinator's children now
        group.Save();
        group.Registrations.AfterRestore(id, report.Processes);
        string line = string.Create(CultureInfo.InvariantCulture,
            $"restored group {group.Config.Name} from {id}: {report.Roots.Count} tree(s), roots {string.Join(' ', report.Roots)}{(report.Storage.Length > 0 ? $", storage rolled back ({report.Storage})" : "")}, in {report.TotalMs:0} ms");
        Log(line);
        return new ControlResponse { Ok = true, Stdout = [.. report.Roots.Select(r => r.ToString(CultureInfo.InvariantCulture))], Stderr = [.. report.Warnings.Select(w => $"warning: {w}"), line] };
    }

    /// <summary>Folds a checkpoint (default: the latest) and the earlier ones it refers to into one full checkpoint.</summary>
    private ControlResponse Merge(GroupRuntime group, string from)
    {
        group.MergePending = false;
        if (Confirm(group) is { } changed)
            return ControlResponse.Failure(changed);
        var checkpoint = from.Length > 0 ? group.Store.Find(from) : group.Store.Latest();
        if (checkpoint is null)
            return ControlResponse.Failure(from.Length > 0 ? $"group {group.Config.Name} has no checkpoint {from}" : $"group {group.Config.Name} has no checkpoint yet");
        var report = Worker.Run(_reaper, _home.DaemonLog, "merge", "--images", checkpoint.Path, "--lock", _home.WorkerLock(group.Config.Name));
        if (!report.Ok)
        {
            Log($"group {group.Config.Name}: merge of {checkpoint.Id} failed: {report.Error}");
            return ControlResponse.Failure(report.Error);
        }
        string line = string.Create(CultureInfo.InvariantCulture,
            $"merged group {group.Config.Name}'s {checkpoint.Id} into a full checkpoint ({report.Pages} pages, {report.Bytes / 1048576.0:0.0} MiB) in {report.TotalMs:0} ms{(report.Removed.Count > 0 ? $"; removed {string.Join(" ", report.Removed)}" : "")}");
        Log(line);
        return new ControlResponse { Ok = true, Stdout = [checkpoint.Id], Stderr = [line] };
    }

    /// <summary>Checks every checkpoint of the group's store (no merge or checkpoint runs meanwhile).</summary>
    private ControlResponse Verify(GroupRuntime group)
    {
        if (Confirm(group) is { } changed)
            return ControlResponse.Failure(changed);
        var found = StoreVerifier.Verify(group.Store);
        if (found.Checkpoints == 0)
            return new ControlResponse { Ok = false, Stdout = found.Lines, Error = $"group {group.Config.Name} has no checkpoint to verify (its store: {group.Config.Store})" };
        if (found.Damaged > 0)
            return new ControlResponse { Ok = false, Stdout = found.Lines, Error = $"{found.Damaged} of {found.Checkpoints} checkpoint(s) of group {group.Config.Name} are damaged" };
        return new ControlResponse { Ok = true, Stdout = found.Lines, Stderr = [$"group {group.Config.Name}: {found.Summary}"] };
    }

    private ControlResponse Images(GroupRuntime group)
    {
        if (Confirm(group) is { } changed)
            return ControlResponse.Failure(changed);
        var lines = group.Store.Scan().Describe();
        return new ControlResponse { Ok = true, Stdout = lines, Stderr = lines.Count == 0 ? [$"group {group.Config.Name} has no checkpoint yet"] : [] };
    }

    private static ControlResponse Stop(GroupRuntime group)
    {
        group.Config.Roots.Clear(); // ended on purpose: not a failure
        group.Config.Launched.Clear();
        group.Save();
        int count = group.LiveProcesses().Count;
        group.KillAll(KillTimeout);
        group.DropTrackers();
        Log($"group {group.Config.Name}: stopped ({count} processes ended)");
        return new ControlResponse { Ok = true, Stderr = [$"stopped group {group.Config.Name} ({count} processes ended)"] };
    }

    /// <summary>Ends the group's processes and forgets the group: its settings, table, socket and cgroup go; its store stays.</summary>
    private ControlResponse Remove(GroupRuntime group)
    {
        var stopped = Stop(group);
        lock (_lock)
            _groups.Remove(group.Config.Name);
        File.Delete(_home.GroupConfig(group.Config.Name));
        group.Dispose();
        File.Delete(_home.ProcessTable(group.Config.Name));
        group.Cgroup.TryRemove();
        Log($"group {group.Config.Name}: removed (store {group.Config.Store} kept)");
        return new ControlResponse { Ok = true, Stderr = [.. stopped.Stderr, $"removed group {group.Config.Name}; its checkpoints stay in {group.Config.Store}"] };
    }

    /// <summary>Every 100 ms: reap, refresh the tables, notice dead members, take scheduled checkpoints.</summary>
    private void Monitor()
    {
        _reaper.Collect();
        List<GroupRuntime> groups;
        lock (_lock)
            groups = [.. _groups.Values];
        foreach (var group in groups)
        {
            if (!group.Busy.Wait(0))
                continue; // an operation is running: it refreshes the table itself
            Func<ControlResponse>? background = null;
            string what = "";
            try
            {
                var dead = group.Config.Roots.Where(r => !IsAlive(r)).ToList();
                if (dead.Count > 0)
                {
                    background = OnMembersEnded(group, dead);
                    what = "restart";
                }
                else if (group.MergePending)
                {
                    background = () => Merge(group, "");
                    what = "merge";
                }
                else if (DateTime.UtcNow >= group.NextCheckpoint && group.LiveProcesses().Count > 0)
                {
                    group.NextCheckpoint = DateTime.UtcNow.AddSeconds(group.Config.EverySeconds);
                    background = () => Checkpoint(group, stop: false, full: false);
                    what = "scheduled checkpoint";
                }
                group.RefreshTable();
            }
            catch (Exception e) when (e is IOException or KernelCallException or TargetGoneException)
            {
                Log($"group {group.Config.Name}: {e.Message}");
            }
            finally
            {
                if (background is null)
                    group.Busy.Release();
                else
                    RunInBackground(group, what, background);
            }
        }
    }

    /// <summary>
    /// Tree roots of the group ended. One that ended by a signal or with a failure status (or that we
    /// cannot know about) is a failure: with restart-on-failure, the rest of the group is stopped and
    /// the whole group restored from its last checkpoint (returned as work to run). Otherwise the
    /// roots are just forgotten.
    /// </summary>
    private Func<ControlResponse>? OnMembersEnded(GroupRuntime group, List<int> dead)
    {
        var failures = new List<string>();
        foreach (int root in dead)
        {
            bool known = _reaper.TryGetEnd(root, out var end);
            string how = known ? end.ToString() : "ended (not a child of the coordinator: status unknown)";
            Log($"group {group.Config.Name}: member {root} {how}");
            if (!known || !end.Exited || end.ExitCode != 0)
                failures.Add($"{root} {how}");
            group.Config.Roots.Remove(root);
            group.Config.Launched.Remove(root);
        }
        group.Save();
        var latest = group.Store.Latest();
        if (failures.Count == 0 || !group.Config.RestartOnFailure)
            return null;
        if (latest is null)
        {
            Log($"group {group.Config.Name}: cannot restart: no checkpoint yet");
            return null;
        }
        return () =>
        {
            Log($"group {group.Config.Name}: restarting after {string.Join("; ", failures)}: stopping the rest, restoring {latest.Id}");
            group.Config.Roots.Clear();
            group.KillAll(KillTimeout);
            var response = Confirm(group) is { } changed ? ControlResponse.Failure(changed) : RestoreFrom(group, latest.Path, latest.Id, group.Owner);
            if (response.Ok)
            {
                group.Config.Restarts++;
                group.Save();
                Log($"group {group.Config.Name}: restarted (restart {group.Config.Restarts})");
            }
            return response;
        };
    }

    /// <summary>Runs an operation the monitor started on a thread of its own; releases the group's Busy at the end.</summary>
    private static void RunInBackground(GroupRuntime group, string what, Func<ControlResponse> work) =>
        new Thread(() =>
        {
            try
            {
                var response = work();
                if (!response.Ok)
                    Log($"group {group.Config.Name}: {what} failed: {response.Error}");
            }
            catch (Exception e)
            {
                Log($"group {group.Config.Name}: {what} failed: {e.Message}");
            }
            finally
            {
                try { group.RefreshTable(); }
                catch (IOException) { }
                group.Busy.Release();
            }
        }) { IsBackground = true, Name = $"amberd-{what}" }.Start();

    private static bool IsAlive(int pid) => ProcFs.TryReadStatus(pid, out var s) && s is not null && s.State is not ('Z' or 'X');

    /// <summary>A process and its descendants now.</summary>
    private static List<int> Tree(int pid)
    {
        var pids = new List<int> { pid };
        for (int i = 0; i < pids.Count; i++)
        {
            try { pids.AddRange(ProcFs.ListChildren(pids[i])); }
            catch (TargetGoneException) { }
        }
        return pids;
    }
}
