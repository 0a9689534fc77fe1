using System.CommandLine;
using System.Globalization;
using Amber.Coordinator.Control;
using Amber.Transport;
using Amber.Transport.Cluster;
using Amber.Transport.Peers;
using Microsoft.Win32.SafeHandles;

namespace Amber.Cli.Commands;

/// <summary>
/// Nodes and moves between them: amber cluster init (a cluster's CA), amber node add (a node's
/// certificate), amber agent (this node's coordinator as a node agent), amber migrate (a group moved
/// to another node's agent).
/// </summary>
public static class ClusterCommands
{
    public static Command Cluster()
    {
        var dir = new Option<string>("--dir") { Description = "The cluster's directory: its CA (ca.crt, ca.key) and the nodes' certificates", Required = true };
        var init = new Command("init", "Make a cluster: a CA every node of it trusts, and nothing else") { dir };
        init.SetAction(parse => CliErrors.Run(() =>
        {
            string directory = Path.GetFullPath(parse.GetRequiredValue(dir));
            string subject = ClusterAuthority.Init(directory);
            Console.Error.WriteLine($"made cluster CA {subject} in {directory}; add nodes with amber node add NAME --cluster {directory}");
            Console.Out.WriteLine(Path.Join(directory, ClusterAuthority.CaCertificate));
            return ExitCodes.Ok;
        }));
        return new Command("cluster", "The cluster of nodes groups move between") { init, Status() };
    }

    /// <summary>amber cluster status: the nodes as the cluster's store lists them, and their groups.</summary>
    private static Command Status()
    {
        var etcd = new Option<string>("--etcd") { Description = "The cluster's store: its etcd members' client URLs, https://ADDR:PORT[,...]", Required = true };
        var cluster = new Option<string>("--cluster") { Description = "The cluster's directory: ca.crt, and the certificate of the node given with --node (shown to etcd)", Required = true };
        var node = new Option<string>("--node") { Description = "The node whose certificate this reads the store with (this one's, usually)", Required = true };
        var json = JsonReport.Option();
        var command = new Command("status", "List the nodes of the cluster (live or not, their leases), the groups each runs and their latest whole checkpoints") { etcd, cluster, node, json };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            var members = EtcdClient.ParseMembers(parse.GetRequiredValue(etcd), out string? problem) ?? throw new UsageException($"--etcd: {problem}");
            using var identity = NodeIdentity.Load(Path.GetFullPath(parse.GetRequiredValue(cluster)), parse.GetRequiredValue(node));
            using var store = new EtcdClient(members, identity, TimeSpan.FromSeconds(5));
            var nodes = ClusterStatus.Read(store);
            var across = GroupCatalog.All(store);
            if (parse.GetValue(json))
                JsonReport.Write(w => WriteStatus(w, nodes, across));
            else
                PrintStatus(nodes, across);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static void PrintStatus(IReadOnlyList<NodeStatus> nodes, IReadOnlyList<GroupAcrossNodes> across)
    {
        PrintNodes(nodes);
        if (across.Count == 0)
            return;
        Console.Out.WriteLine();
        Console.Out.WriteLine($"{"GROUP",-20} {"LEADER",-20} LATEST CHECKPOINT ACROSS NODES");
        foreach (var g in across)
        {
            string latest = g.Latest is not { } e ? "none"
                : $"{e.Id} ({string.Join(", ", e.Parts.Select(p => $"{p.Node}{(p.Local.Length > 0 ? $" ({p.Local})" : "")}: {p.Checkpoint}"))}; barrier {e.BarrierMs.ToString("0.0", System.Globalization.CultureInfo.InvariantCulture)} ms)";
            Console.Out.WriteLine($"{g.Name,-20} {(g.Leader.Length == 0 ? "none" : g.Leader),-20} {latest}");
            if (g.Settings is { } settings)
                Console.Out.WriteLine($"{"",-20} {"",-20} settings: {settings}");
        }
    }

    private static void PrintNodes(IReadOnlyList<NodeStatus> nodes)
    {
        Console.Out.WriteLine($"{"NODE",-20} {"STATE",-5} {"LEASE",-9} {"ADDRESS",-24} GROUPS");
        foreach (var n in nodes)
        {
            string lease = n.Alive ? $"{n.LeaseLeftSeconds}/{n.LeaseSeconds} s" : "-";
            string names = n.Record is { Groups.Count: > 0 } r ? string.Join(' ', r.Groups.Select(g => g.Name)) : "-";
            Console.Out.WriteLine($"{n.Name,-20} {(n.Alive ? "live" : "gone"),-5} {lease,-9} {n.Record?.Address ?? "-",-24} {names}");
        }
        var groups = nodes.Where(n => n.Alive && n.Record is not null).SelectMany(n => n.Record!.Groups.Select(g => (Node: n.Name, Group: g))).OrderBy(x => x.Group.Name, StringComparer.Ordinal).ToList();
        if (groups.Count == 0)
            return;
        Console.Out.WriteLine();
        Console.Out.WriteLine($"{"GROUP",-20} {"NODE",-20} {"PROCESSES",-24} LATEST WHOLE CHECKPOINT");
        foreach (var (name, g) in groups)
        {
            string processes = g.Processes.Count == 0 ? "none" : string.Join(',', g.Processes);
            string latest = g.Latest.Length == 0 ? "none" : $"{g.Latest} ({DateTimeOffset.FromUnixTimeMilliseconds(g.LatestUnixMs).ToLocalTime():yyyy-MM-dd HH:mm:ss})";
            Console.Out.WriteLine($"{g.Name,-20} {name,-20} {processes,-24} {latest}");
        }
    }

    private static void WriteStatus(System.Text.Json.Utf8JsonWriter w, IReadOnlyList<NodeStatus> nodes, IReadOnlyList<GroupAcrossNodes> across)
    {
        w.WriteStartObject();
        w.WriteStartArray("nodes");
        foreach (var n in nodes)
        {
            w.WriteStartObject();
            w.WriteString("name", n.Name);
            w.WriteBoolean("alive", n.Alive);
            w.WriteNumber("leaseLeftSeconds", n.LeaseLeftSeconds);
            w.WriteNumber("leaseSeconds", n.LeaseSeconds);
            if (n.Record is { } r)
            {
                w.WriteString("address", r.Address);
                w.WriteNumber("cpus", r.Cpus);
                w.WriteNumber("memoryBytes", r.MemoryBytes);
                w.WriteNumber("startedUnixMs", r.StartedUnixMs);
            }
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteStartArray("groups");
        foreach (var n in nodes.Where(n => n.Alive && n.Record is not null))
        {
            foreach (var g in n.Record!.Groups)
            {
                w.WriteStartObject();
                w.WriteString("name", g.Name);
                if (g.PartOf.Length > 0)
                    w.WriteString("partOf", g.PartOf);
                w.WriteString("node", n.Name);
                w.WriteNumbers("processes", g.Processes);
                w.WriteString("latest", g.Latest);
                w.WriteNumber("latestUnixMs", g.LatestUnixMs);
                w.WriteEndObject();
            }
        }
        w.WriteEndArray();
        w.WriteStartArray("acrossNodes");
        foreach (var g in across)
        {
            w.WriteStartObject();
            w.WriteString("name", g.Name);
            w.WriteString("leader", g.Leader);
            w.WriteNumber("checkpoints", g.Checkpoints);
            w.WritePropertyName("latest");
            if (g.Latest is { } entry)
                w.WriteRawValue(System.Text.Json.JsonSerializer.Serialize(entry, GroupCatalog.Json));
            else
                w.WriteNullValue();
            w.WritePropertyName("settings");
            if (g.Settings is { } settings)
                w.WriteRawValue(System.Text.Json.JsonSerializer.Serialize(settings, Amber.Coordinator.Groups.GroupPolicyJson.Default.GroupPolicy));
            else
                w.WriteNullValue();
            w.WriteEndObject();
        }
        w.WriteEndArray();
        w.WriteEndObject();
    }

    public static Command Node()
    {
        var name = new Argument<string>("name") { Description = "The node's name (its certificate's)" };
        var cluster = new Option<string>("--cluster") { Description = "The cluster's directory (amber cluster init --dir)", Required = true };
        var add = new Command("add", "Issue a node's certificate and key (NAME.crt, NAME.key) in the cluster's directory") { name, cluster };
        add.SetAction(parse => CliErrors.Run(() =>
        {
            string node = parse.GetRequiredValue(name);
            if (!ClusterAuthority.IsNodeName(node))
                throw new UsageException($"'{node}' is not a node name ({ClusterAuthority.NodeNameRule})");
            string certificate = ClusterAuthority.AddNode(Path.GetFullPath(parse.GetRequiredValue(cluster)), node);
            Console.Error.WriteLine($"issued node {node}'s certificate {certificate} and its key (0600) beside it; copy both and ca.crt to the node");
            Console.Out.WriteLine(certificate);
            return ExitCodes.Ok;
        }));
        return new Command("node", "The nodes of a cluster") { add };
    }

    public static Command Agent()
    {
        var listen = new Option<string>("--listen") { Description = "ADDR:PORT where the other nodes reach this one", Required = true };
        var cluster = new Option<string>("--cluster") { Description = "The cluster's directory: ca.crt, and NAME.crt and NAME.key of this node", Required = true };
        var node = new Option<string>("--node") { Description = "This node's name", Required = true };
        var peerTimeout = new Option<double>("--peer-timeout")
        {
            Description = "Seconds another node may say nothing before a migration with it is given up (a dead node, a cut link)", DefaultValueFactory = _ => 30,
        };
        var etcd = new Option<string>("--etcd") { Description = "The cluster's store: etcd members' client URLs, https://ADDR:PORT[,...] (mutual TLS with this node's certificate); the node registers there and stays listed while it lives" };
        var leaseTtl = new Option<int>("--lease-ttl") { Description = "With --etcd: seconds the node stays listed as live after its last renewal (it renews every third of them)", DefaultValueFactory = _ => 10 };
        var command = new Command("agent", "Run this node's coordinator in the foreground as a node agent: groups migrate to and from it (mutual TLS within the cluster)") { listen, cluster, node, peerTimeout, etcd, leaseTtl };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (!NodeAddress.TryParse(parse.GetRequiredValue(listen), out var address))
                throw new UsageException($"--listen {parse.GetRequiredValue(listen)}: it is ADDR:PORT (an IPv6 address in brackets)");
            double seconds = parse.GetValue(peerTimeout);
            if (!(seconds is >= 1 and <= 3600))
                throw new UsageException($"--peer-timeout {seconds}: give 1 to 3600 seconds");
            IReadOnlyList<Uri>? members = null;
            int ttl = parse.GetValue(leaseTtl);
            if (parse.GetValue(etcd) is { } list)
            {
                members = EtcdClient.ParseMembers(list, out string? problem) ?? throw new UsageException($"--etcd: {problem}");
                if (NodeRegistration.LeaseTtlProblem(ttl) is { } bad)
                    throw new UsageException(bad);
            }
            else if (parse.GetResult(leaseTtl) is { Implicit: false })
                throw new UsageException("--lease-ttl goes with --etcd");
            var identity = NodeIdentity.Load(Path.GetFullPath(parse.GetRequiredValue(cluster)), parse.GetRequiredValue(node));
            // A call to the store waits at most until the next renewal is due.
            (EtcdClient, int)? store = members is null ? null : (new EtcdClient(members, identity, TimeSpan.FromSeconds(Math.Max(1, ttl / 3.0))), ttl);
            using var coordinator = new Coordinator.Daemon.Coordinator(new NodeAgent(identity, address, TimeSpan.FromSeconds(seconds), store));
            return coordinator.Run();
        }));
        return command;
    }

    /// <summary>amber migrate --to-file: the stream goes to a file the CLI makes (with the caller's rights) or to its stdout.</summary>
    private static int ToFile(string group, string file, bool json)
    {
        bool stdout = file == "-";
        if (stdout && json)
            throw new UsageException("--to-file - writes the stream on stdout: no --json there");
        if (stdout && !Console.IsOutputRedirected)
            throw new UsageException("--to-file - writes the stream on stdout, which is a terminal: pipe it (| ssh HOST amber receive) or give a file");
        FileStream? made = null;
        if (!stdout)
        {
            try
            {
                // Images hold memory, so secrets: 0600, as the checkpoints it comes from.
                made = new FileStream(file, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite });
            }
            catch (IOException e)
            {
                throw new IOException($"--to-file {file}: {(File.Exists(file) ? "it exists (give a new file)" : e.Message)}", e);
            }
        }
        using (made)
        {
            int fd = made is null ? 1 : (int)made.SafeFileHandle.DangerousGetHandle();
            var response = ControlClient.Send(new MigrateRequest(group, "", MigrateRequest.StopAndCopy, MigrateRequest.DefaultMaxDowntimeMs, MigrateRequest.FinalRoundAnyway, fd));
            if (!response.Ok && made is not null)
                File.Delete(file); // nothing of a stream that was not all written
            if (stdout)
                response.Stdout.Clear(); // stdout is the stream
            return GroupCommands.Print(response, json);
        }
    }

    public static Command Receive()
    {
        var fromFile = new Option<string>("--from-file") { Description = "The stream amber migrate --to-file wrote: a file, or - (stdin, the default)" };
        var restore = new Option<bool>("--restore") { Description = "Restore the group once it is in" };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON" };
        var command = new Command("receive", "Take a group from a stream (amber migrate --to-file's, e.g. through ssh): made here with its checkpoints, restored with --restore") { fromFile, restore, json };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            string file = parse.GetValue(fromFile) ?? "-";
            if (file == "-" && !Console.IsInputRedirected)
                throw new UsageException("the stream comes on stdin, which is a terminal: pipe it in (ssh HOST amber migrate --to-file - | amber receive) or give --from-file");
            using var opened = file == "-" ? null : OpenStream(file);
            int fd = opened is null ? 0 : (int)opened.DangerousGetHandle();
            var request = new ReceiveRequest(fd, parse.GetValue(restore));
            return GroupCommands.Print(ProgressDisplay.Remote("receive", ProgressDisplay.Measure.Written, progress => ControlClient.Send(request, startDaemon: true, progress: progress)), parse.GetValue(json));
        }));
        return command;
    }

    private static SafeFileHandle OpenStream(string file)
    {
        try
        {
            return File.OpenHandle(file, FileMode.Open, FileAccess.Read);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new IOException($"--from-file {file}: {e.Message}", e);
        }
    }

    public static Command Migrate()
    {
        var group = GroupCommands.GroupOption(required: true);
        var to = new Option<string>("--to") { Description = "The destination node's agent, ADDR:PORT" };
        var toFile = new Option<string>("--to-file") { Description = "Instead of an agent: write the group's stream to this new file, or - (stdout: a pipe, e.g. to ssh ... amber receive); it ends here once all is written" };
        var mode = new Option<string>("--mode") { Description = "precopy (default: rounds while it runs, then a short final one), postcopy (it runs there at once, its pages follow: first those it touches) or stop (frozen throughout)" };
        var maxDowntime = new Option<string>("--max-downtime") { Description = "Pre-copy: rounds go on until the last is estimated to take at most this many ms (default 100)" };
        var onNoConvergence = new Option<string>("--on-no-convergence") { Description = "Pre-copy whose rounds stop shrinking: stop (a final round however long; default) or abort" };
        var json = new Option<bool>("--json") { Description = "Print the report as JSON: rounds, bytes, downtime, total time" };
        var command = new Command("migrate", "Move a running group to another node, its connections with it; it runs on here if anything fails") { group, to, toFile, mode, maxDowntime, onNoConvergence, json };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            if (parse.GetValue(toFile) is { } file)
            {
                if (parse.GetValue(to) is not null || parse.GetValue(mode) is not null || parse.GetValue(maxDowntime) is not null || parse.GetValue(onNoConvergence) is not null)
                    throw new UsageException("--to-file goes alone: the group is frozen, written and ended (no --to, --mode, --max-downtime or --on-no-convergence)");
                return ToFile(GroupCommands.GroupName(parse, group)!, file, parse.GetValue(json));
            }
            if (parse.GetValue(to) is null)
                throw new UsageException("say where: --to ADDR:PORT (a node agent) or --to-file FILE|-");
            string how = parse.GetValue(mode) ?? MigrateRequest.PreCopy;
            if (how is not (MigrateRequest.PreCopy or MigrateRequest.StopAndCopy or MigrateRequest.PostCopy))
                throw new UsageException($"--mode {how}: it is precopy, postcopy or stop");
            string convergence = parse.GetValue(onNoConvergence) ?? MigrateRequest.FinalRoundAnyway;
            if (convergence is not (MigrateRequest.FinalRoundAnyway or MigrateRequest.Abort))
                throw new UsageException($"--on-no-convergence {convergence}: it is stop or abort");
            if (!NodeAddress.TryParse(parse.GetRequiredValue(to), out _))
                throw new UsageException($"--to {parse.GetRequiredValue(to)}: it is ADDR:PORT (an IPv6 address in brackets)");
            double downtime = MigrateRequest.DefaultMaxDowntimeMs;
            if (parse.GetValue(maxDowntime) is { } text && (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out downtime) || !(downtime is > 0 and <= 3_600_000)))
                throw new UsageException($"--max-downtime {text}: it is milliseconds, more than 0");
            var request = new MigrateRequest(GroupCommands.GroupName(parse, group)!, parse.GetRequiredValue(to), how, downtime, convergence);
            return GroupCommands.Print(ProgressDisplay.Remote("migrate", ProgressDisplay.Measure.Written, progress => ControlClient.Send(request, progress: progress)), parse.GetValue(json));
        }));
        return command;
    }
}
