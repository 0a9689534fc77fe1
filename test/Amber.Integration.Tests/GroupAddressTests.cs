using System.Globalization;
using System.Text.Json;
using Amber.Coordinator.Groups;
using Amber.Kernel.Processes;

namespace Amber.Integration.Tests;

/// <summary>
/// Groups with an address of their own (amber run --net bridge): a network namespace with loopback and
/// eth0 (the first group with all its namespaces of its own), a veth pair to a bridge of the test's own (the coordinator's "bridge" setting) in a subnet of
/// the test's own, ports published to the host with nftables DNAT. Clients on the host hold TCP
/// connections to a server inside, directly and through the published port, across a checkpoint that
/// ends the group and its restore; a failure halfway through the setup leaves nothing behind. And a tree
/// checkpointed by PID in a network namespace of its own with a veth pair, addresses, routes and an
/// nftables table: all of it made again.
/// </summary>
public sealed class GroupAddressTests
{
    /// <summary>
    /// Answers each line "N" on a connection with "N BYTES HOSTNAME": the line's number, the bytes the
    /// connection has brought so far, the host name. Its count per connection is the state a restore must keep.
    /// </summary>
    private const string Server = """
        import socket, threading
        s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(('0.0.0.0', 7000)); s.listen(8)
        print('READY', flush=True)
        def serve(c):
            total, pending = 0, b''
            while True:
                d = c.recv(4096)
                if not d:
                    return
                total += len(d); pending += d
                while b'\n' in pending:
                    line, pending = pending.split(b'\n', 1)
                    c.sendall(b'%s %d %s\n' % (line, total - len(pending), socket.gethostname().encode()))
        while True:
            c, _ = s.accept()
            threading.Thread(target=serve, args=(c,), daemon=True).start()
        """;

    /// <summary>
    /// Sends numbered lines on one connection and checks every answer (the number, the bytes sent so
    /// far, the host name) until WORKDIR/stop exists: "tick N", then "PASS N"; "FAIL ..." on anything else.
    /// </summary>
    private const string Client = """
        import os, socket, sys, time
        host, port, wd, name = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4].encode()
        s = socket.create_connection((host, port), timeout=60)
        n = total = 0
        for _ in range(100000):
            if os.path.exists(os.path.join(wd, 'stop')):
                break
            n += 1
            line = b'%d\n' % n
            s.sendall(line); total += len(line)
            answer = b''
            while not answer.endswith(b'\n'):
                d = s.recv(100)
                if not d:
                    print('FAIL end of file after %d' % n, flush=True); sys.exit(1)
                answer += d
            if answer.split() != [b'%d' % n, b'%d' % total, name]:
                print('FAIL %r for line %d, %d bytes' % (answer, n, total), flush=True); sys.exit(1)
            print('tick %d' % n, flush=True)
            time.sleep(0.02)
        print('PASS %d' % n, flush=True)
        """;

    [Fact]
    public void AGroupWithAnAddressOfItsOwnKeepsItsConnectionsAndItsPublishedPortAcrossARestore()
    {
        using var network = new TestNetwork();
        using var home = new GroupHome("address");
        network.StartDaemon(home);
        using var work = new TestDir("address-clients");
        int hostPort = Http.FreePort();
        string address = network.Address(5);
        // All its namespaces: its work directory and amber's home (its log) are in the host's /tmp, which its own covers.
        string own = "/tmp/amber-own-" + Guid.NewGuid().ToString("N")[..8];
        int server = home.RunIn(work.Path, "addr", ["--isolate", "pid,uts,ipc,mount", "--hostname", "inside", "--net", "bridge", "--address", address,
            "--publish", $"127.0.0.1:{hostPort}:7000", "--bind", $"{work.Path}:{work.Path}", "--bind", $"{home.Home.Home}:{home.Home.Home}"], "/usr/bin/python3", "-c", Server);
        var log = new GroupMember(server, home.Home.GroupLog("addr"));
        log.WaitForLine("READY");
        // Beside the server: System V objects checked with the host name every tick (isolated.c), a file in its /tmp.
        File.Copy(TargetBinaries.Get("isolated"), work["isolated"]);
        home.RunIn(work.Path, "addr", [], work["isolated"], work.Path);
        home.RunIn(work.Path, "addr", [], "/bin/sh", "-c", $"echo kept > {own}; exec sleep 1000");
        log.WaitForTicks(2);
        Assert.False(File.Exists(own), $"the group's {own} is seen on the host");
        string hostLink = GroupNetwork.HostLink(home.Home.StateDirectory, "addr");
        Assert.Equal(network.Bridge, Master(hostLink));
        var before = Inside(server);
        Assert.Contains($"{address} eth0", before.Addresses);
        Assert.Contains($"default via {network.Gateway} dev eth0", before.Routes);

        // Through the bridge to its address, and through the host's published port.
        using var direct = TargetProcess.Start("/usr/bin/python3", ["-c", Client, address.Split('/')[0], "7000", work.Path, "inside"], work.Path, logName: "direct.log");
        using var published = TargetProcess.Start("/usr/bin/python3", ["-c", Client, "127.0.0.1", hostPort.ToString(CultureInfo.InvariantCulture), work.Path, "inside"], work.Path, logName: "published.log");
        direct.WaitForTicks(20);
        published.WaitForTicks(20);

        home.Amber("checkpoint", "--group", "addr", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => home.Members("addr").Count == 0, "the group to end");
        // Its namespace went with it, and the veth pair with that.
        GroupHome.WaitUntil(() => !Directory.Exists($"/sys/class/net/{hostLink}"), $"{hostLink} to go with the group's namespace");
        home.Amber("restore", "--group", "addr").ShouldSucceed();

        // The same connections carry on, every answer checked; the address, MAC and routes as they were,
        // the System V objects and host name (isolated.c ticks), the file in its /tmp.
        direct.WaitForTicks(20);
        published.WaitForTicks(20);
        log.WaitForNewTicks(3);
        home.RunIn(work.Path, "addr", [], "/bin/sh", "-c", $"echo \"tmp $(cat {own})\"");
        log.WaitForLine("tmp kept");
        int restored = home.Members("addr").Single(p => Amber.Kernel.Proc.ProcFs.ReadStatus(p).Name == "python3");
        Assert.NotEqual(Namespaces.OfThisProcess(NamespaceKind.Net), Namespaces.Of(restored, NamespaceKind.Net));
        Assert.Equal(before, Inside(restored));
        Assert.Equal(network.Bridge, Master(hostLink));
        // A new connection through the published port, after the restore.
        using (var again = TargetProcess.Start("/usr/bin/python3", ["-c", Client, "127.0.0.1", hostPort.ToString(CultureInfo.InvariantCulture), work.Path, "inside"], work.Path, logName: "again.log"))
            again.WaitForTicks(5);

        File.WriteAllText(work["stop"], "");
        foreach (var client in new[] { direct, published })
        {
            client.WaitForLine(l => l.StartsWith("PASS", StringComparison.Ordinal) || l.StartsWith("FAIL", StringComparison.Ordinal), "PASS or FAIL");
            Assert.Contains(client.Lines(), l => l.StartsWith("PASS", StringComparison.Ordinal));
        }
        GroupHome.WaitUntil(() => log.Lines().Any(l => l.StartsWith("PASS", StringComparison.Ordinal)), "isolated.c's PASS");

        // Removing the group takes its published ports away.
        Assert.Contains($"amber_publish_{hostLink}", NftTables());
        home.Amber("stop", "--group", "addr", "--remove").ShouldSucceed();
        Assert.DoesNotContain($"amber_publish_{hostLink}", NftTables());
    }

    /// <summary>
    /// A group with an IPv6 address of its own, its port published on the host's IPv6 addresses (an
    /// ip6 table): a client on the host reaches it through the host's address on the bridge, and keeps
    /// its connection across a checkpoint that ends the group and its restore.
    /// </summary>
    [Fact]
    public void AGroupWithAnIPv6AddressIsReachedThroughItsPortPublishedOnTheHostsIPv6Address()
    {
        using var network = new TestNetwork();
        using var home = new GroupHome("address6");
        network.StartDaemon(home);
        using var work = new TestDir("address6-client");
        int hostPort = Http.FreePort();
        string prefix = $"fd00:213:{Random.Shared.Next(1, 0xffff):x}::";
        int server = home.Run("addr6", ["--net", "bridge", "--address", $"{prefix}5/64", "--publish", $"[{prefix}1]:{hostPort}:7000"], "/usr/bin/python3", "-c", Server.Replace("'0.0.0.0'", "'::'", StringComparison.Ordinal).Replace("socket.socket()", "socket.socket(socket.AF_INET6)", StringComparison.Ordinal));
        new GroupMember(server, home.Home.GroupLog("addr6")).WaitForLine("READY");
        string hostName = Namespaces.HostName(); // no UTS namespace of its own
        using var client = TargetProcess.Start("/usr/bin/python3", ["-c", Client, $"{prefix}1", hostPort.ToString(CultureInfo.InvariantCulture), work.Path, hostName], work.Path, logName: "client.log");
        client.WaitForTicks(10);
        string hostLink = GroupNetwork.HostLink(home.Home.StateDirectory, "addr6");
        Assert.Contains($"table ip6 amber_publish_{hostLink}", NftTables());

        home.Amber("checkpoint", "--group", "addr6", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => home.Members("addr6").Count == 0, "the group to end");
        home.Amber("restore", "--group", "addr6").ShouldSucceed();
        client.WaitForTicks(10);
        File.WriteAllText(work["stop"], "");
        client.WaitForLine(l => l.StartsWith("PASS", StringComparison.Ordinal) || l.StartsWith("FAIL", StringComparison.Ordinal), "PASS or FAIL");
        Assert.Contains(client.Lines(), l => l.StartsWith("PASS", StringComparison.Ordinal));
        home.Amber("stop", "--group", "addr6", "--remove").ShouldSucceed();
        Assert.DoesNotContain($"amber_publish_{hostLink}", NftTables());
    }

    [Fact]
    public void ANetworkSetupThatFailsHalfwayLeavesNoInterfaceRuleOrProcessBehind()
    {
        using var network = new TestNetwork();
        using var home = new GroupHome("address-fault");
        int hostPort = Http.FreePort();
        string[] options = ["--isolate", "pid", "--net", "bridge", "--address", network.Address(6), "--publish", $"{hostPort}:7000"];
        string hostLink = GroupNetwork.HostLink(home.Home.StateDirectory, "fault");

        // The first program's namespace: its veth pair made, its address not yet.
        var daemon = network.StartDaemon(home, fault: "NetworkSetup");
        home.Amber(["run", "--group", "fault", .. options, "--", "/usr/bin/python3", "-c", Server]).ShouldFail("injected fault at NetworkSetup");
        AssertNothingLeft(home, network, hostLink);
        StopDaemon(home, daemon);

        // A restore's: the same, from a checkpoint taken without the fault.
        daemon = network.StartDaemon(home);
        int pid = home.Run("fault", [], "/usr/bin/python3", "-c", Server);
        new GroupMember(pid, home.Home.GroupLog("fault")).WaitForLine("READY");
        Assert.Contains($"amber_publish_{hostLink}", NftTables());
        home.Amber("checkpoint", "--group", "fault", "--stop").ShouldSucceed();
        GroupHome.WaitUntil(() => home.Members("fault").Count == 0, "the group to end");
        StopDaemon(home, daemon);
        network.StartDaemon(home, fault: "NetworkSetup");
        home.Amber("restore", "--group", "fault").ShouldFail("injected fault at NetworkSetup");
        AssertNothingLeft(home, network, hostLink);
    }

    private static void StopDaemon(GroupHome home, RunningAmber daemon)
    {
        home.Amber("daemon", "--stop").ShouldSucceed();
        daemon.Wait();
    }

    [Fact]
    public void ATreeWithAVethPairAddressesRoutesAndAnNftablesTableGetsThemAllBack()
    {
        using var network = new TestNetwork();
        using var dir = new TestDir("veth-tree");
        using var target = TargetProcess.Start("/usr/bin/unshare", ["--net", "--", "/bin/sh", "-c", "ip link set lo up; echo READY; exec sleep 1000"], dir.Path, logName: "tree.log");
        target.WaitForLine(l => l == "READY", "READY");
        string link = $"{network.Bridge}v";
        string address = network.Address(7), v6 = "fd00:a:b::7/64";
        ExternalProgram.Run("/usr/sbin/ip", "link", "add", link, "type", "veth", "peer", "name", "eth1", "netns", target.Pid.ToString(CultureInfo.InvariantCulture)).ShouldSucceed();
        ExternalProgram.Run("/usr/sbin/ip", "link", "set", link, "master", network.Bridge, "up").ShouldSucceed();
        string pid = target.Pid.ToString(CultureInfo.InvariantCulture);
        foreach (var command in new[]
        {
            $"ip link set eth1 mtu 1400 up", $"ip address add {address} dev eth1", $"ip -6 address add {v6} dev eth1 nodad",
            $"ip route add default via {network.Gateway}", "ip route add 192.0.2.0/24 via " + network.Gateway + " metric 50",
            "nft add table inet mine", "nft add counter inet mine hits", "nft add chain inet mine input { type filter hook input priority 0 ; }",
            "nft add rule inet mine input tcp dport 7777 counter name hits accept",
        })
            ExternalProgram.Run("/usr/bin/nsenter", ["-t", pid, "-n", .. command.Split(' ')]).ShouldSucceed();
        // A packet counted before the checkpoint: the counter comes back with it.
        Assert.False(Http.TryConnect(address.Split('/')[0], 7777));
        var before = Inside(target.Pid);
        Assert.Contains("hits packets 1", before.Nftables);

        var tree = target.Tree().Skip(1).ToList();
        AmberCli.Run("checkpoint", pid, "--images", dir["img"]).ShouldSucceed();
        target.ReapKilled(tree);
        GroupHome.WaitUntil(() => !Directory.Exists($"/sys/class/net/{link}"), $"{link} to go with the namespace");

        // A failed restore leaves no veth pair; then one that works gets it all back.
        var failed = AmberCli.Run(["restore", "--images", dir["img"], "--detach"], env: new Dictionary<string, string> { ["AMBER_FAULT"] = "NetworkSetup" });
        failed.ShouldFail("injected fault at NetworkSetup");
        Assert.False(Directory.Exists($"/sys/class/net/{link}"), $"{link} stayed after a failed restore");
        Assert.False(target.IsRunning);
        AmberCli.Run("restore", "--images", dir["img"], "--detach").ShouldSucceed();
        target.Restored();
        Assert.Equal(before, Inside(target.Pid));
        Assert.Equal(network.Bridge, Master(link));
        string inspect = AmberCli.Run("inspect", dir["img"]).ShouldSucceed().Stdout;
        Assert.Contains("requires namespaces, network-links", inspect);
        Assert.Contains($"interface eth1 (veth, ", inspect);
        Assert.Contains($"its other end {link} on the host in bridge {network.Bridge}", inspect);
        Assert.Contains($"address {address} on eth1", inspect);
        Assert.Contains($"route 192.0.2.0/24 via {network.Gateway} dev eth1 proto boot scope global metric 50", inspect);
        Assert.Contains("nftables: table inet mine", inspect);
        // Through the bridge again, to the same MAC: the host's neighbour entry is still right.
        Assert.False(Http.TryConnect(address.Split('/')[0], 7777));
        GroupHome.WaitUntil(() => Inside(target.Pid).Nftables.Contains("hits packets 2", StringComparison.Ordinal), "the counter to count the packet");
    }

    /// <summary>
    /// A group on a macvlan of its own (--net macvlan:IF) on one end of a veth pair whose other end is in
    /// a namespace of the test's (the network IF leads to), where a client holds a connection to the
    /// group's server: across a checkpoint that ends the group and its restore (the macvlan made again
    /// on IF, with its MAC), every answer checked.
    /// </summary>
    [Fact]
    public void AGroupOnAMacvlanOfItsOwnKeepsItsConnectionAcrossARestore()
    {
        using var network = new TestNetwork();
        using var home = new GroupHome("macvlan");
        network.StartDaemon(home);
        using var work = new TestDir("macvlan-client");
        using var peer = TargetProcess.Start("/usr/bin/unshare", ["--net", "--", "/bin/sh", "-c", "ip link set lo up; echo READY; exec sleep 1000"], work.Path, logName: "peer.log");
        peer.WaitForLine(l => l == "READY", "READY");
        string lower = $"{network.Bridge}m", peerPid = peer.Pid.ToString(CultureInfo.InvariantCulture);
        ExternalProgram.Run("/usr/sbin/ip", "link", "add", lower, "type", "veth", "peer", "name", "eth1", "netns", peerPid).ShouldSucceed();
        try
        {
            ExternalProgram.Run("/usr/sbin/ip", "link", "set", lower, "up").ShouldSucceed();
            ExternalProgram.Run("/usr/bin/nsenter", "-t", peerPid, "-n", "ip", "address", "add", network.Address(9), "dev", "eth1").ShouldSucceed();
            ExternalProgram.Run("/usr/bin/nsenter", "-t", peerPid, "-n", "ip", "link", "set", "eth1", "up").ShouldSucceed();
            string address = network.Address(5);
            string router = network.Address(9).Split('/')[0];
            int server = home.Run("mv", ["--isolate", "pid,uts", "--hostname", "inside", "--net", $"macvlan:{lower}", "--address", address, "--gateway", router],
                "/usr/bin/python3", "-c", Server);
            new GroupMember(server, home.Home.GroupLog("mv")).WaitForLine("READY");
            var before = Inside(server);
            Assert.Contains($"{address} eth0", before.Addresses);
            Assert.Contains($"default via {router} dev eth0", before.Routes);

            using var client = TargetProcess.Start("/usr/bin/nsenter", ["-t", peerPid, "-n", "/usr/bin/python3", "-c", Client, address.Split('/')[0], "7000", work.Path, "inside"], work.Path, logName: "client.log");
            client.WaitForTicks(20);
            home.Amber("checkpoint", "--group", "mv", "--stop").ShouldSucceed();
            GroupHome.WaitUntil(() => home.Members("mv").Count == 0, "the group to end");
            home.Amber("restore", "--group", "mv").ShouldSucceed();
            client.WaitForTicks(20);
            Assert.Equal(before, Inside(home.Members("mv").Single()));
            string inspect = AmberCli.Run("inspect", Path.Combine(home.Home.DefaultStore("mv"), "ckpt-000001")).ShouldSucceed().Stdout;
            Assert.Contains($"interface eth0 (macvlan, ", inspect);
            Assert.Contains($"on the host's {lower} in bridge mode", inspect);

            File.WriteAllText(work["stop"], "");
            client.WaitForLine(l => l.StartsWith("PASS", StringComparison.Ordinal) || l.StartsWith("FAIL", StringComparison.Ordinal), "PASS or FAIL");
            Assert.Contains(client.Lines(), l => l.StartsWith("PASS", StringComparison.Ordinal));
            home.Amber("stop", "--group", "mv", "--remove").ShouldSucceed();
        }
        finally
        {
            ExternalProgram.Run("/usr/sbin/ip", "link", "delete", lower);
        }
    }

    /// <summary>A policy routing rule (IPv4 or IPv6) would not come back: refused by name, the tree left running.</summary>
    [Theory]
    [InlineData("ip rule add from 192.0.2.0/24 table 100 priority 100", "IPv4 routing rule 100 (table 100)")]
    [InlineData("ip -6 rule add from 2001:db8::/64 table 100 priority 100", "IPv6 routing rule 100 (table 100)")]
    public void APolicyRoutingRuleIsRefusedByNameAndTheTreeRunsOn(string rule, string named)
    {
        using var dir = new TestDir("rule-tree");
        using var target = TargetProcess.Start("/usr/bin/unshare", ["--net", "--", "/bin/sh", "-c", $"{rule} && echo READY; exec sleep 1000"], dir.Path, logName: "tree.log");
        target.WaitForLine(l => l == "READY", "READY");
        GroupHome.WaitUntil(() => Amber.Kernel.Proc.ProcFs.ReadStatus(target.Pid).Name == "sleep", "the shell to become sleep");
        AmberCli.Run("checkpoint", target.Pid.ToString(CultureInfo.InvariantCulture), "--images", dir["img"]).ShouldFail($"{named} of its network namespace is a policy routing rule");
        Assert.False(Directory.Exists(dir["img"]));
        Assert.True(target.IsRunning);
    }

    [Fact]
    public void NetworkOptionsAreCheckedBeforeAnythingIsMade()
    {
        using var home = new GroupHome("address-options");
        home.Amber("run", "--group", "x", "--net", "macvlan:eth0", "--", "/bin/true").ShouldBeUsageError("--net macvlan:eth0 needs --address");
        home.Amber("run", "--group", "x", "--net", "macvlan:eth 0", "--address", "10.1.2.3/24", "--", "/bin/true").ShouldBeUsageError("'eth 0' is not a host interface's name");
        home.Amber("run", "--group", "x", "--net", "macvlan:eth0", "--address", "10.1.2.3/24", "--publish", "80:80", "--", "/bin/true").ShouldBeUsageError("--publish is for --net bridge");
        home.Amber("run", "--group", "x", "--net", "macvlan:eth0", "--address", "10.1.2.3/24", "--gateway", "10.1.3.1", "--", "/bin/true").ShouldBeUsageError("is not another address of the group's subnet");
        home.Amber("run", "--group", "x", "--net", "macvlan:eth0", "--address", "10.1.2.3/24", "--gateway", "fd00::1", "--", "/bin/true").ShouldBeUsageError("is not of the family");
        home.Amber("run", "--group", "x", "--net", "bridge", "--gateway", "10.177.0.1", "--", "/bin/true").ShouldBeUsageError("--gateway is for --net macvlan:IF");
        home.Amber("run", "--group", "x", "--net", "wire", "--", "/bin/true").ShouldBeUsageError("unknown network");
        home.Amber("run", "--group", "x", "--address", "10.1.2.3/24", "--", "/bin/true").ShouldBeUsageError("--address and --publish need --net bridge");
        home.Amber("run", "--group", "x", "--net", "bridge", "--address", "10.1.2.3", "--", "/bin/true").ShouldBeUsageError("is not an address with its prefix length");
        home.Amber("run", "--group", "x", "--net", "bridge", "--address", "10.1.2.1/24", "--", "/bin/true").ShouldBeUsageError("gateway");
        home.Amber("run", "--group", "x", "--net", "bridge", "--address", "10.1.2.255/24", "--", "/bin/true").ShouldBeUsageError("broadcast");
        home.Amber("run", "--group", "x", "--net", "bridge", "--publish", "80", "--", "/bin/true").ShouldBeUsageError("--publish 80 is not");
        home.Amber("run", "--group", "x", "--net", "bridge", "--publish", "8080:80/sctp", "--", "/bin/true").ShouldBeUsageError("--publish 8080:80/sctp is not");
        home.Amber("run", "--group", "x", "--net", "bridge", "--publish", "fd00::1:8080:80", "--", "/bin/true").ShouldBeUsageError("--publish fd00::1:8080:80 is not");
        home.Amber("run", "--group", "x", "--net", "bridge", "--publish", "[fd00::1]:8080:80", "--", "/bin/true").ShouldBeUsageError("the host's address is IPv6 and the group's IPv4");
        home.Amber("run", "--group", "x", "--net", "bridge", "--address", "fd00::5/64", "--publish", "127.0.0.1:8080:80", "--", "/bin/true").ShouldBeUsageError("the host's address is IPv4 and the group's IPv6");
        Assert.False(File.Exists(home.Home.ControlSocket), "the coordinator was started for a request refused on the spot");
    }

    private static void AssertNothingLeft(GroupHome home, TestNetwork network, string hostLink)
    {
        Assert.Empty(home.Members("fault"));
        Assert.False(Directory.Exists($"/sys/class/net/{hostLink}"), $"{hostLink} stayed after a failed setup");
        Assert.Empty(Directory.GetFileSystemEntries($"/sys/class/net/{network.Bridge}/brif"));
        Assert.DoesNotContain($"amber_publish_{hostLink}", NftTables());
    }

    /// <summary>What a process's network namespace holds: addresses and routes (as "ADDR DEV", "ROUTE"), MACs, nftables.</summary>
    private sealed record NetworkView(string Addresses, string Routes, string Macs, string Nftables)
    {
        // Counters move; the rest must be equal.
        public bool Equals(NetworkView? other) => other is not null && (Addresses, Routes, Macs) == (other.Addresses, other.Routes, other.Macs)
            && Tables(Nftables) == Tables(other.Nftables);

        public override int GetHashCode() => HashCode.Combine(Addresses, Routes, Macs);

        private static string Tables(string text) => string.Join('\n', text.Split('\n').Where(l => !l.Contains("packets", StringComparison.Ordinal)));
    }

    private static NetworkView Inside(int pid)
    {
        string Run(params string[] command) => ExternalProgram.Run("/usr/bin/nsenter", ["-t", pid.ToString(CultureInfo.InvariantCulture), "-n", .. command]).ShouldSucceed().Stdout;
        using var links = JsonDocument.Parse(Run("ip", "-j", "address", "show"));
        var addresses = links.RootElement.EnumerateArray().SelectMany(l => l.GetProperty("addr_info").EnumerateArray()
            .Select(a => $"{a.GetProperty("local").GetString()}/{a.GetProperty("prefixlen").GetInt32()} {l.GetProperty("ifname").GetString()}"));
        var macs = links.RootElement.EnumerateArray().Select(l => $"{l.GetProperty("ifname").GetString()} {l.GetProperty("address").GetString()} mtu {l.GetProperty("mtu").GetInt32()}");
        string routes = Run("ip", "route", "show") + Run("ip", "-6", "route", "show");
        // "counter hits { packets 1 ..." on one line, for the tests to look for.
        string nft = string.Join('\n', Run("nft", "list", "ruleset").Split('\n').Select(l => l.Trim()).Where(l => l.Length > 0))
            .Replace("counter hits {\npackets", "hits packets", StringComparison.Ordinal);
        return new NetworkView(string.Join('\n', addresses), routes, string.Join('\n', macs), nft);
    }

    private static string? Master(string link) =>
        new FileInfo($"/sys/class/net/{link}/master").LinkTarget is { } target ? Path.GetFileName(target) : null;

    private static string NftTables() => ExternalProgram.Run("/usr/sbin/nft", "list", "tables").ShouldSucceed().Stdout;

    /// <summary>
    /// A bridge and a /24 of the test's own: the coordinators it starts put groups there (the
    /// "bridge" and "addressPool" settings); removed at the end with all it holds.
    /// </summary>
    private sealed class TestNetwork : IDisposable
    {
        private readonly TestDir _dir = new("address-net");
        private readonly int _subnet = Random.Shared.Next(0, 250);

        public TestNetwork()
        {
            Bridge = $"ambt{Random.Shared.Next(0x100000, 0xffffff):x}";
            // The coordinator makes it; made here it is the test's to remove, whatever happens.
            ExternalProgram.Run("/usr/sbin/ip", "link", "add", Bridge, "type", "bridge").ShouldSucceed();
            ExternalProgram.Run("/usr/sbin/ip", "address", "add", $"{Gateway}/24", "dev", Bridge).ShouldSucceed();
            ExternalProgram.Run("/usr/sbin/ip", "link", "set", Bridge, "up").ShouldSucceed();
            File.WriteAllText(_dir["amber.json"], $$"""{ "bridge": "{{Bridge}}", "addressPool": "10.213.{{_subnet}}.0/24" }""");
        }

        public string Bridge { get; }

        public string Gateway => $"10.213.{_subnet}.1";

        public string Address(int host) => $"10.213.{_subnet}.{host}/24";

        public RunningAmber StartDaemon(GroupHome home, string? fault = null)
        {
            var environment = new Dictionary<string, string> { ["AMBER_CONFIG"] = _dir["amber.json"] };
            if (fault is not null)
                environment["AMBER_FAULT"] = fault;
            return home.StartDaemon(environment);
        }

        public void Dispose()
        {
            ExternalProgram.Run("/usr/sbin/ip", "link", "delete", Bridge);
            _dir.Dispose();
        }
    }
}
