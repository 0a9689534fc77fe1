using System.CommandLine;
using Amber.Coordinator.Control;

namespace Amber.Cli.Commands;

/// <summary>
/// The group verbs (amber run, attach, detach, stop, images --group, and the --group forms of
/// checkpoint and restore): each is one request to the coordinator, which does the work.
/// </summary>
public static class GroupCommands
{
    public static Option<string> GroupOption(bool required) =>
        new("--group", "-g") { Description = "The application group", Required = required };

    /// <summary>The --group given, checked (a usage error if it cannot be a group's name); null if none.</summary>
    public static string? GroupName(ParseResult parse, Option<string> group) =>
        parse.GetValue(group) is { } name ? OptionValues.GroupName(name) : null;

    public static Command Run()
    {
        var group = GroupOption(required: true);
        var images = new Option<string>("--images", "-D") { Description = "The group's store (default: /var/lib/amber/groups/NAME/images)" };
        var every = new Option<string>("--every") { Description = "Checkpoint the group periodically: 30s, 5m, 1h, 500ms" };
        var storage = new Option<string[]>("--storage") { Description = "A directory of the group's, captured at the same barrier as its memory and rolled back by a restore (repeatable)", AllowMultipleArgumentsPerToken = false };
        var shared = new Option<bool>("--shared-storage") { Description = "The --storage directories are on a file system every node shares (NFS, CephFS...): a migration leaves them in place instead of sending them (--shared-storage false: no longer)" };
        var nodeLoss = new Option<string>("--node-loss") { Description = "A group across nodes, when a node is lost: rollback (the whole group back to its latest checkpoint across nodes, the default) or lost-only (only the lost node's members restored elsewhere; the others run on)" };
        nodeLoss.AcceptOnlyFromAmong("rollback", "lost-only");
        var restart = new Option<bool>("--restart-on-failure") { Description = "When a member dies, restore the whole group from its last checkpoint (--restart-on-failure false: no longer)" };
        var deadline = new Option<string>("--deadline") { Description = "How long programs using the client library get to prepare for a checkpoint (default 5s)" };
        var mergeAfter = new Option<string>("--merge-after") { Description = "Fold the chain of incremental checkpoints into a full one when it is this long (default 8)" };
        var mergeAbove = new Option<string>("--merge-above") { Description = "Fold it also once its incremental checkpoints hold more than this together: 512M, 2G (default: no limit)" };
        var keepLast = new Option<string>("--keep-last") { Description = "Retention: keep the latest N checkpoints, remove older ones (default: keep all)" };
        var keepFor = new Option<string>("--keep-for") { Description = "Retention: keep the checkpoints of the last 12h, 7d... (with --keep-last: those kept by either)" };
        var compress = CheckpointCommand.CompressOption();
        var encrypt = KeyOptions.Encrypt();
        encrypt.Description = "Encrypt the group's checkpoints (AES-256-GCM) with the key in KEYFILE (amber key new KEYFILE); only when the group is made";
        var isolate = new Option<string>("--isolate") { Description = "Namespaces of the group's own, made again by its restores: pid,uts,ipc,net,mount (only when the group is made)" };
        var bind = new Option<string[]>("--bind") { Description = "SRC:DST, a bind mount in the group's own mount namespace (implies --isolate mount; root only; repeatable)", AllowMultipleArgumentsPerToken = false };
        var hostname = new Option<string>("--hostname") { Description = "With --isolate uts: the group's host name (default: the group's name)" };
        var net = new Option<string>("--net") { Description = "An address of the group's own, in a network namespace of its own: bridge (a veth pair to amber's bridge amber0) or macvlan:IF (a macvlan on the host's interface IF); only when the group is made" };
        var address = new Option<string>("--address") { Description = "With --net: the group's address and prefix length, 10.177.0.5/16 or fd00:177::5/64 (bridge's default: the next free one of the pool, 10.177.0.0/16; macvlan needs one)" };
        var gateway = new Option<string>("--gateway") { Description = "With --net macvlan:IF: the group's default route, through this router of IF's network" };
        var publish = new Option<string[]>("--publish") { Description = "With --net bridge: a port published to the host, [HOSTIP:]HOSTPORT:PORT[/tcp|/udp] (repeatable)", AllowMultipleArgumentsPerToken = false };
        var node = new Option<string>("--node") { Description = "Run it on node NAME of the cluster, as a member of the group there (this node's agent asks NAME's; agents with --etcd)" };
        var command = new Argument<string[]>("command") { Description = "The program and its arguments (after --)", Arity = ArgumentArity.OneOrMore };
        var run = new Command("run", "Launch a program into an application group (made if new), under the coordinator; print its PID")
        {
            group, images, every, storage, shared, restart, deadline, mergeAfter, mergeAbove, keepLast, keepFor, compress, command, encrypt, isolate, hostname, net, address, gateway, publish, bind, node, nodeLoss,
        };
        run.SetAction(parse => CliErrors.Run(() =>
        {
            // Every value is checked here, before the coordinator is started or anything is made.
            var request = new RunRequest(GroupName(parse, group)!)
            {
                Command = [.. parse.GetRequiredValue(command)],
                WorkingDirectory = Environment.CurrentDirectory,
                Environment = Amber.Kernel.Processes.Spawner.CurrentEnvironment(),
                Store = parse.GetValue(images) is { } store ? StorePath(store) : "",
                EverySeconds = parse.GetValue(every) is { } text ? OptionValues.Interval(text, "--every") : 0,
                Storage = [.. (parse.GetValue(storage) ?? []).Select(StoragePath)],
                SharedStorage = parse.GetResult(shared) is { Implicit: false } ? parse.GetValue(shared) : null,
                RestartOnFailure = parse.GetResult(restart) is { Implicit: false } ? parse.GetValue(restart) : null,
                NodeLoss = parse.GetValue(nodeLoss) ?? "",
                DeadlineSeconds = parse.GetValue(deadline) is { } d ? OptionValues.Interval(d, "--deadline") : 0,
                MergeAfter = parse.GetValue(mergeAfter) is { } n ? OptionValues.Count(n, "--merge-after", "checkpoints") : 0,
                MergeAboveBytes = parse.GetValue(mergeAbove) is { } size ? OptionValues.Size(size, "--merge-above") : 0,
                KeepLast = parse.GetValue(keepLast) is { } last ? OptionValues.Count(last, "--keep-last", "checkpoints") : 0,
                KeepForSeconds = parse.GetValue(keepFor) is { } span ? OptionValues.Interval(span, "--keep-for") : 0,
                Compress = parse.GetValue(compress) is { } codec ? Amber.Image.PageCodec.Name(CheckpointCommand.ParseCompress(codec)) : "",
                Encrypt = parse.GetValue(encrypt) is { } keyFile ? Amber.Image.ImageKey.Load(keyFile).Path : "", // checked here, as the caller
                Isolate = parse.GetValue(isolate) is { } kinds ? [.. kinds.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)] : [],
                Hostname = parse.GetValue(hostname) ?? "",
                Net = parse.GetValue(net) ?? "",
                Address = parse.GetValue(address) ?? "",
                Gateway = parse.GetValue(gateway) ?? "",
                Publish = [.. parse.GetValue(publish) ?? []],
                Bind = [.. parse.GetValue(bind) ?? []],
                Node = parse.GetValue(node) is { } name ? OptionValues.NodeName(name) : "",
            };
            if (request.Node.Length > 0 && request.Encrypt.Length > 0)
                throw new UsageException("--encrypt cannot go with --node: the key file is this node's (run the group's first program on that node with it)");
            if (Amber.Coordinator.Daemon.Handlers.GroupSettings.Problem(request) is { } problem)
                throw new UsageException(problem);
            return Print(ControlClient.Send(request, startDaemon: true));
        }));
        return run;
    }

    public static Command Attach() => PidVerb("attach", "Add a running process tree (PID and its descendants) to a group", (g, p) => new AttachRequest(g, p));

    public static Command Detach() => PidVerb("detach", "Take a process tree out of a group", (g, p) => new DetachRequest(g, p));

    public static Command Stop()
    {
        var group = GroupOption(required: true);
        var remove = new Option<bool>("--remove") { Description = "Also forget the group (settings, process table, cgroup); its checkpoints stay" };
        var command = new Command("stop", "End every process of a group (its checkpoints stay)") { group, remove };
        command.SetAction(parse => CliErrors.Run(() =>
            Print(ControlClient.Send(parse.GetValue(remove) ? new RemoveRequest(GroupName(parse, group)!) : new StopRequest(GroupName(parse, group)!)))));
        return command;
    }

    public static int Checkpoint(string group, bool stop, bool full, bool json) =>
        Print(ProgressDisplay.Remote("checkpoint", ProgressDisplay.Measure.Written, progress => ControlClient.Send(new CheckpointRequest(group, stop, full), progress: progress)), json);

    public static int Restore(string group, string? from, bool json) =>
        Print(ProgressDisplay.Remote("restore", ProgressDisplay.Measure.Read, progress => ControlClient.Send(new RestoreRequest(group, from ?? ""), progress: progress)), json);

    public static int Images(string group, bool json) => Print(ControlClient.Send(new ImagesRequest(group)), json);

    public static Command Daemon()
    {
        var stop = new Option<bool>("--stop") { Description = "Stop the running coordinator (its groups keep running)" };
        var command = new Command("daemon", "Run the coordinator in the foreground (amber run starts it when needed)") { stop };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (parse.GetValue(stop))
                return Print(ControlClient.Send(new ShutdownRequest()));
            using var coordinator = new Coordinator.Daemon.Coordinator();
            return coordinator.Run();
        }));
        return command;
    }

    /// <summary>A group's store, as a full path (the coordinator's working directory is not the caller's): not an existing file.</summary>
    private static string StorePath(string path)
    {
        if (path.Trim().Length == 0)
            throw new UsageException("--images expects a directory, got ''");
        string full = Path.GetFullPath(path);
        return File.Exists(full) ? throw new IOException($"store {full} is a file, not a directory") : full;
    }

    /// <summary>A storage directory, as a full path: it must exist.</summary>
    private static string StoragePath(string path)
    {
        if (path.Trim().Length == 0)
            throw new UsageException("--storage expects a directory, got ''");
        string full = Path.GetFullPath(path);
        return Directory.Exists(full) ? full : throw new IOException($"storage {full} is not a directory");
    }

    private static Command PidVerb(string op, string description, Func<string, int, GroupRequest> request)
    {
        var group = GroupOption(required: true);
        var pid = new Argument<int>("pid") { Description = "The root of the process tree" };
        var command = new Command(op, description) { group, pid };
        command.SetAction(parse => CliErrors.Run(() =>
            Print(ControlClient.Send(request(GroupName(parse, group)!, OptionValues.Pid(parse.GetValue(pid)))))));
        return command;
    }

    /// <summary>The coordinator's answer: its lines, or with <paramref name="json"/> its report (a JSON document) on stdout.</summary>
    public static int Print(ControlResponse response, bool json = false)
    {
        foreach (var line in response.Stderr)
            Console.Error.WriteLine(line.StartsWith("warning: ", StringComparison.Ordinal) ? $"amber: {line}" : line);
        if (json && response.Report.Length > 0)
            Console.Out.WriteLine(response.Report);
        else if (!json)
        {
            foreach (var line in response.Stdout)
                Console.Out.WriteLine(line);
        }
        if (response.Ok)
            return ExitCodes.Ok;
        Console.Error.WriteLine($"amber: {response.Error}");
        return ExitCodes.Failed;
    }
}
