using System.Globalization;
using Amber.Checkpoint;
using Amber.Checkpoint.Resources.Isolation;
using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;
using Amber.Kernel;
using Amber.Kernel.Processes;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Daemon.Handlers;

/// <summary>
/// amber run: the group made if new (<see cref="Create"/>, before its owner is checked), or given the
/// settings that can change (refusing those that cannot); then the program starts in it.
/// </summary>
/// <param name="defaults">What a new group takes for the settings amber run does not give (the configuration file).</param>
/// <param name="agent">This node's agent, which keeps the settings of a group across nodes in the cluster's store; null: none.</param>
internal sealed class RunHandler(AmberHome home, ChildReaper reaper, StoreApproval approval, GroupSet groups, AttachHandler attach, ILoggerFactory loggers,
    CoordinatorConfig defaults, INodeAgent? agent) : IGroupHandler<RunRequest>
{
    private ILogger Logger { get; } = loggers.CreateLogger<RunHandler>();

    /// <summary>A new group for <paramref name="who"/> with the request's settings; null and why not if its store or storage cannot be.</summary>
    public GroupRuntime? Create(RunRequest request, Requester who, out string? problem)
    {
        string store = request.Store.Length > 0 ? request.Store
            : defaults.StoreRoot is { } root ? Path.Combine(root, request.Group)
            : home.DefaultStore(request.Group);
        var config = GroupSettings.ForNewGroup(request, store, who, defaults);
        if (config.SharedStorage && config.Storage.Count == 0)
        {
            problem = "--shared-storage needs --storage: the directories that are shared";
            return null;
        }
        if (config.Net.Length > 0 && (problem = Address(config, request)) is not null)
            return null;
        // Root's own: a bind over a file of the host's (/etc/passwd, a sudoers) would give setuid programs
        // started in the group another system to believe.
        if (config.Binds.Count > 0 && who.Uid != 0)
        {
            problem = "--bind is for root only: a bind mount over a host's file would change what setuid programs in the group trust";
            return null;
        }
        if (config.Isolate.Contains("mount") && (problem = GroupMounts.HostProblem(config.Binds) ?? GroupMounts.LogProblem(home.GroupLog(config.Name), config.Binds)) is not null)
            return null;
        // Not under the groups' lock: the access check waits for a helper process, which the monitor (taking the lock) reaps.
        problem = StoreApproval.StorageProblem(config.Storage, config.Store, who.Uid)
            ?? (config.EncryptKey.Length > 0 ? GroupKey.Problem(config.EncryptKey, who.Uid) : null)
            ?? approval.AccessProblem(config);
        if (problem is not null)
            return null;
        // A part of a group across nodes: the group's settings, whatever this node's defaults.
        if (agent?.Policy(request, GroupPolicy.Of(config), out problem) is { } policy)
            policy.ApplyTo(config);
        else if (problem is not null)
            return null;
        return groups.GetOrAdd(request.Group, () =>
        {
            var group = GroupRuntime.Create(home, config, attach.ForRegistration, loggers.CreateLogger<Registrations>());
            StoreApproval.RememberStore(config);
            group.Save();
            Logger.Created(group.Config.Name, config.Store, $"{(config.EverySeconds > 0 ? $", every {config.EverySeconds} s" : "")}{(config.RestartOnFailure ? ", restart on failure" : "")}");
            return group;
        });
    }

    /// <summary>A new group's address (the one asked for, or the pool's first free one) and host link; why not, or null.</summary>
    private string? Address(GroupConfig config, RunRequest request)
    {
        config.HostLink = GroupNetwork.HostLink(home.StateDirectory, config.Name);
        var used = groups.All().Where(g => g.Config.Name != config.Name).Select(g => g.Config.Address).Where(a => a.Length > 0).ToList();
        if (request.Address.Length > 0)
        {
            if (used.Any(a => a.Split('/')[0] == request.Address.Split('/')[0]))
                return $"--address {request.Address} is another group's";
            config.Address = request.Address;
            return null;
        }
        try
        {
            config.Address = GroupNetwork.Allocate(defaults.AddressPool ?? GroupNetwork.DefaultPool, used);
            return null;
        }
        catch (InvalidOperationException e)
        {
            return e.Message;
        }
    }

    public ControlResponse Handle(GroupRuntime group, RunRequest request, Requester who, Action<ProgressSample>? progress)
    {
        if (GroupSettings.Refusal(group.Config, request) is { } refusal)
            return ControlResponse.Failure(refusal);
        string? problem = null;
        var policy = agent?.Policy(request, GroupPolicy.Of(group.Config).With(request), out problem);
        if (problem is not null)
            return ControlResponse.Failure(problem);
        var changes = GroupSettings.Apply(group.Config, request);
        if (policy is not null)
            changes.AddRange(policy.ApplyTo(group.Config).Select(c => $"{c} (the group's, across nodes)"));
        if (changes.Count > 0)
        {
            group.Schedule.Restart(group.Config.EverySeconds);
            group.Save();
            Logger.SettingsChanged(group.Config.Name, string.Join(", ", changes));
        }
        var launched = Launch(group, request, who.Uid, who.Gid);
        launched.Stderr.InsertRange(0, changes.Select(c => $"group {group.Config.Name}: {c}"));
        return launched;
    }

    /// <summary>
    /// How the helper puts a program into the group's namespaces of its own: those of a running member
    /// (joined), or new ones when none runs (the first program; or after the group ended). Not its PID
    /// namespace: a process never enters one, it is born in it (<see cref="Launch"/>).
    /// </summary>
    private static List<string> Isolation(GroupRuntime group, int? member)
    {
        // An address of its own: the spawn makes the first program's network namespace (Launch).
        var kinds = string.Join(",", group.Config.Isolate.Where(k => k != "pid" && (k != "net" || member is not null || group.Config.Net.Length == 0))
            .Select(k => k == "mount" ? NamespaceKind.Mount.ProcName() : k));
        if (kinds.Length == 0)
            return [];
        if (member is int running)
            return ["--join", running.ToString(CultureInfo.InvariantCulture), "--namespaces", kinds];
        var args = new List<string> { "--unshare", kinds };
        if (group.Config.Hostname.Length > 0)
            args.AddRange(["--hostname", group.Config.Hostname]);
        if (group.Config.Isolate.Contains("mount"))
        {
            args.Add("--private-tmp");
            foreach (string bind in group.Config.Binds)
                args.AddRange(["--bind", bind]);
            // The helper is born PID 1 of the group's PID namespace: a procfs it mounts shows that one.
            if (group.Config.Isolate.Contains("pid"))
                args.Add("--proc");
        }
        return args;
    }

    /// <summary>
    /// Starts a program in the group: amber's exec helper joins the group's cgroup (so the program
    /// and all it ever forks belong to it) and its namespaces, becomes the caller's user, and becomes the program.
    /// </summary>
    private ControlResponse Launch(GroupRuntime group, RunRequest request, uint uid, uint gid)
    {
        if (request.Command.Count == 0)
            return ControlResponse.Failure("no command to run");
        var helper = new List<string> { "internal", "exec", "--cgroup", group.Cgroup.Path };
        if (uid != 0)
            helper.AddRange(["--uid", uid.ToString(CultureInfo.InvariantCulture), "--gid", gid.ToString(CultureInfo.InvariantCulture)]);
        int? member = group.LiveProcesses() is [int first, ..] ? first : null;
        helper.AddRange(Isolation(group, member));
        // A PID namespace of the group's own: the first program is born as its PID 1, the others in it.
        bool ownPids = group.Config.Isolate.Contains("pid");
        var (path, args) = SelfCommand.With([.. helper, "--", .. request.Command]);
        // An address of its own, for the first program: the host's side first, then its namespace, on the spawn's thread.
        NetworkRestorer.Made? network = null;
        if (member is null && GroupNetwork.PrepareHostProblem(group.Config) is { } hostSide)
            return ControlResponse.Failure(hostSide);
        string log = home.GroupLog(group.Config.Name);
        group.PrepareLog();
        // The client library finds its group's registration socket through these.
        var environment = request.Environment.Where(e => !e.StartsWith("AMBER_GROUP=", StringComparison.Ordinal) && !e.StartsWith("AMBER_REGISTRATION=", StringComparison.Ordinal))
            .Append($"AMBER_GROUP={group.Config.Name}").Append($"AMBER_REGISTRATION={group.Registrations.SocketPath}").ToList();
        int pid;
        try
        {
            pid = Spawner.Spawn(new SpawnOptions(path, args)
            {
                Environment = environment,
                WorkingDirectory = request.WorkingDirectory.Length > 0 ? request.WorkingDirectory : "/",
                Opens = [(0, "/dev/null", SpawnOptions.Read), (1, log, SpawnOptions.Append), (2, log, SpawnOptions.Append)],
                NewSession = true,
                NewPidNamespace = ownPids && member is null,
                PidNamespaceOf = ownPids && member is int m ? m : 0,
                Prepare = group.Config.Net.Length > 0 && member is null ? () => network = GroupNetwork.MakeNamespace(group.Config) : null,
            });
        }
        catch (Exception e) when (e is KernelCallException or CheckpointException)
        {
            using (network)
                GroupNetwork.TryUnpublish(group.Config);
            return ControlResponse.Failure($"group {group.Config.Name}: '{request.Command[0]}' could not start: {e.Message}");
        }
        // The helper joins the cgroup first thing; the program runs once it is in.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (!group.Cgroup.Processes().Contains(pid))
        {
            if (reaper.TryGetEnd(pid, out var end) || DateTime.UtcNow > deadline)
            {
                using (network)
                    GroupNetwork.TryUnpublish(group.Config);
                return ControlResponse.Failure($"'{request.Command[0]}' did not start in group {group.Config.Name}{(end.Tid != 0 ? $" ({end})" : "")}; see {log}");
            }
            Thread.Sleep(2);
        }
        network?.Keep();
        group.Config.Roots.Add(pid);
        group.Config.Launched.Add(pid);
        group.Save();
        Logger.Launched(group.Config.Name, string.Join(' ', request.Command), pid);
        return new ControlResponse { Ok = true, Stdout = [pid.ToString(CultureInfo.InvariantCulture)] };
    }
}
