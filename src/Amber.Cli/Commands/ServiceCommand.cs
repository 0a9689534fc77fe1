using System.CommandLine;

namespace Amber.Cli.Commands;

/// <summary>
/// amber install-service: the coordinator as a systemd service (Type=notify: it says READY once its
/// control socket listens, STOPPING when it ends; its log lines go to the journal); with --agent, the
/// coordinator as this node's agent (amber agent), in a unit of its own that excludes the other.
/// </summary>
public static class ServiceCommand
{
    private const string UnitName = "amber.service";
    private const string AgentUnitName = "amber-agent.service";

    public static Command Create()
    {
        var directory = new Option<string>("--unit-dir") { Description = "Where to write the unit", DefaultValueFactory = _ => "/etc/systemd/system" };
        var agent = new Option<bool>("--agent") { Description = "The node agent's unit (amber-agent.service) instead, with --listen, --cluster and --node as amber agent takes them" };
        var listen = new Option<string>("--listen") { Description = "With --agent: ADDR:PORT where the other nodes reach this one" };
        var cluster = new Option<string>("--cluster") { Description = "With --agent: the cluster's directory (ca.crt, NAME.crt, NAME.key)" };
        var node = new Option<string>("--node") { Description = "With --agent: this node's name" };
        var etcd = new Option<string>("--etcd") { Description = "With --agent: the cluster's store, its etcd members' client URLs (https://ADDR:PORT[,...])" };
        var leaseTtl = new Option<int?>("--lease-ttl") { Description = "With --agent and --etcd: the node's lease in the store, in seconds" };
        var command = new Command("install-service", "Write the coordinator's systemd unit (then: systemctl daemon-reload && systemctl enable --now amber)")
        {
            directory, agent, listen, cluster, node, etcd, leaseTtl,
        };
        command.SetAction(parse => CliErrors.Run(() =>
        {
            string dir = parse.GetValue(directory)!;
            string amber = Environment.ProcessPath ?? throw new IOException("the path of this amber is not known");
            string name = UnitName, unit;
            if (parse.GetValue(agent))
            {
                if (parse.GetValue(listen) is not { } address || parse.GetValue(cluster) is not { } clusterDir || parse.GetValue(node) is not { } nodeName)
                    throw new UsageException("--agent needs --listen ADDR:PORT, --cluster DIR and --node NAME");
                if (!Transport.Peers.NodeAddress.TryParse(address, out _))
                    throw new UsageException($"--listen {address}: it is ADDR:PORT (an IPv6 address in brackets)");
                clusterDir = Path.GetFullPath(clusterDir);
                Transport.Cluster.NodeIdentity.Load(clusterDir, nodeName).Dispose(); // what the agent will load, checked now
                string store = "";
                if (parse.GetValue(etcd) is { } members)
                {
                    if (Transport.Cluster.EtcdClient.ParseMembers(members, out string? problem) is null)
                        throw new UsageException($"--etcd: {problem}");
                    store = $" --etcd {Quoted(members)}";
                    if (parse.GetValue(leaseTtl) is int ttl)
                        store += Transport.Cluster.NodeRegistration.LeaseTtlProblem(ttl) is { } bad ? throw new UsageException(bad) : $" --lease-ttl {ttl}";
                }
                else if (parse.GetValue(leaseTtl) is not null)
                    throw new UsageException("--lease-ttl goes with --etcd");
                (name, unit) = (AgentUnitName, AgentUnit(amber, address, clusterDir, nodeName, store));
            }
            else
            {
                if (parse.GetValue(listen) is not null || parse.GetValue(cluster) is not null || parse.GetValue(node) is not null || parse.GetValue(etcd) is not null)
                    throw new UsageException("--listen, --cluster, --node and --etcd go with --agent");
                unit = Unit(amber);
            }
            if (!Directory.Exists(dir))
                throw new IOException($"{dir} does not exist");
            string path = Path.Combine(dir, name);
            string temporary = path + ".tmp";
            File.WriteAllText(temporary, unit);
            File.SetUnixFileMode(temporary, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            File.Move(temporary, path, overwrite: true);
            Console.Error.WriteLine($"wrote {path} (amber {amber}); now: systemctl daemon-reload && systemctl enable --now {name[..^".service".Length]}");
            return ExitCodes.Ok;
        }));
        return command;
    }

    /// <summary>The unit: the coordinator in the foreground, as `amber daemon` runs it.</summary>
    public static string Unit(string amber) => Service("Amber coordinator: checkpoint and restore of application groups", $"{Quoted(amber)} daemon", AgentUnitName);

    /// <summary>The agent's unit: the coordinator as this node's agent; it and amber.service exclude each other (one coordinator per AMBER_HOME).</summary>
    /// <param name="amber">This amber's path.</param>
    /// <param name="listen">The agent's --listen.</param>
    /// <param name="cluster">The agent's --cluster, absolute.</param>
    /// <param name="node">The agent's --node.</param>
    /// <param name="store">The agent's --etcd and --lease-ttl, as they go on its command line ("": none).</param>
    public static string AgentUnit(string amber, string listen, string cluster, string node, string store = "") =>
        Service($"Amber node agent {node}: the coordinator, and migrations to and from this node", $"{Quoted(amber)} agent --listen {Quoted(listen)} --cluster {Quoted(cluster)} --node {Quoted(node)}{store}", UnitName);

    /// <summary>
    /// An argument as systemd's ExecStart= reads it: % and $ doubled (specifiers and variables), in
    /// double quotes when it has a space, a quote or a backslash.
    /// </summary>
    private static string Quoted(string argument)
    {
        argument = argument.Replace("%", "%%", StringComparison.Ordinal).Replace("$", "$$", StringComparison.Ordinal);
        return argument.IndexOfAny([' ', '"', '\\', '\'', '\t']) < 0 ? argument
            : $"\"{argument.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal)}\"";
    }

    private static string Service(string description, string execStart, string conflicts) => $"""
        [Unit]
        Description={description}
        After=network.target
        Conflicts={conflicts}

        [Service]
        Type=notify
        ExecStart={execStart}
        # SIGTERM ends the coordinator alone: the groups' processes run on, and a coordinator started
        # again finds them. It makes the groups' cgroups itself.
        KillMode=process
        Delegate=yes
        Restart=on-failure
        StandardOutput=journal
        StandardError=journal

        [Install]
        WantedBy=multi-user.target

        """;
}
