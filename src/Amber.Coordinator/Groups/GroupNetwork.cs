using System.Buffers.Binary;
using System.Globalization;
using System.IO.Hashing;
using System.Net;
using System.Net.Sockets;
using System.Text;
using Amber.Checkpoint.Resources.Isolation;
using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Net;
using Amber.Kernel.Processes;

namespace Amber.Coordinator.Groups;

/// <summary>
/// A group's address of its own (amber run --net bridge): its network namespace has loopback and eth0,
/// one end of a veth pair whose other end is attached to a bridge amber keeps on the host (amber0),
/// which holds the subnet's gateway (its first address); or (--net macvlan:IF) eth0 a macvlan on the
/// host's interface IF, with an address of IF's network. Ports published to the host (--publish) are
/// DNAT rules in an nftables table of the group's, as a container runtime makes them. The group's
/// namespace is set up as a restore makes one again (<see cref="NetworkRestorer"/>), from a plan
/// instead of an image; its checkpoints then save and restore it like any other.
/// </summary>
public static class GroupNetwork
{
    public const string DefaultBridge = "amber0";
    public const string DefaultPool = "10.177.0.0/16";
    private const string Inside = "eth0";

    /// <summary>The host-side end of the group's veth pair: amb + a hash of its home and name (at most 15 characters).</summary>
    public static string HostLink(string home, string group) =>
        "amb" + Convert.ToHexStringLower(XxHash3.Hash(Encoding.UTF8.GetBytes($"{home}\n{group}")))[..10];

    /// <summary>The host interface of --net macvlan:IF, or null for another network.</summary>
    public static string? MacvlanLower(string net) => net.StartsWith(MacvlanPrefix, StringComparison.Ordinal) ? net[MacvlanPrefix.Length..] : null;

    private const string MacvlanPrefix = "macvlan:";

    /// <summary>
    /// Why --address cannot be the group's, or null: an IPv4 or IPv6 host address with its prefix length;
    /// <paramref name="onBridge"/>, not the first of its subnet, which is the bridge's (the gateway).
    /// </summary>
    public static string? AddressProblem(string cidr, bool onBridge = true)
    {
        if (!TryParse(cidr, out var address, out int prefix))
            return $"--address {cidr} is not an address with its prefix length (10.177.0.5/24, fd00:177::5/64)";
        int bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        if (prefix < 8 || prefix > bits - 2)
            return $"--address {cidr}: a prefix length from 8 to {bits - 2} leaves room for the group and its gateway";
        var hostMask = ((UInt128)1 << (bits - prefix)) - 1;
        var host = Number(address) & hostMask;
        if (host == 0 || (onBridge && host == 1) || (bits == 32 && host == hostMask))
            return $"--address {cidr} is the subnet's {(host == 0 ? "own address" : host == 1 ? "gateway (the bridge's address)" : "broadcast address")}";
        return null;
    }

    /// <summary>
    /// Why a --publish cannot be a group's of address <paramref name="address"/> (empty: the pool's, IPv4), or
    /// null: [HOSTIP:]HOSTPORT:PORT[/tcp|/udp], HOSTIP of the address's family ([...] around an IPv6 one).
    /// </summary>
    public static string? PublishProblem(string spec, string address)
    {
        if (!Publish.TryParse(spec, out var publish))
            return $"--publish {spec} is not [HOSTIP:]HOSTPORT:PORT[/tcp|/udp] (8080:80, 127.0.0.1:8080:80/tcp, [fd00::1]:8080:80)";
        bool v6 = address.Contains(':');
        if (publish.HostAddress is { } host && host.Contains(':') != v6)
            return $"--publish {spec}: the host's address is IPv{(v6 ? 4 : 6)} and the group's IPv{(v6 ? 6 : 4)} (nftables translates ports, not families)";
        return null;
    }

    /// <summary>
    /// Why <paramref name="gateway"/> cannot be the router of a group of address <paramref name="cidr"/>
    /// (ADDR/LEN), or null: an address of the same family in its subnet, not its own.
    /// </summary>
    public static string? GatewayProblem(string gateway, string cidr)
    {
        if (!IPAddress.TryParse(gateway, out var router) || gateway.Contains('/') || gateway.Contains('%'))
            return $"--gateway {gateway} is not an address (10.0.0.1, fd00::1)";
        if (!TryParse(cidr, out var address, out int prefix) || address.AddressFamily != router.AddressFamily)
            return $"--gateway {gateway} is not of the family of --address {cidr}";
        int bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var mask = ~(((UInt128)1 << (bits - prefix)) - 1);
        if ((Number(router) & mask) != (Number(address) & mask) || router.Equals(address))
            return $"--gateway {gateway} is not another address of the group's subnet {cidr}";
        return null;
    }

    /// <summary>Why <paramref name="pool"/> cannot be an address pool, or null: an IPv4 subnet of 30 bits or fewer.</summary>
    public static string? PoolProblem(string pool) =>
        TryParse(pool, out var network, out int prefix) && network.AddressFamily == AddressFamily.InterNetwork && prefix is >= 8 and <= 30 ? null
            : $"{pool} is not an IPv4 subnet of 8 to 30 bits";

    /// <summary>The first free address of <paramref name="pool"/> (after its gateway) that no group in <paramref name="used"/> has.</summary>
    public static string Allocate(string pool, IEnumerable<string> used)
    {
        if (PoolProblem(pool) is { } problem)
            throw new InvalidOperationException($"the address pool: {problem}");
        TryParse(pool, out var network, out int prefix);
        var taken = used.Where(u => u.Length > 0).Select(u => u.Split('/')[0]).ToHashSet();
        uint first = (uint)Number(network) & (uint.MaxValue << (32 - prefix));
        uint count = (1u << (32 - prefix)) - 2; // not the subnet's own address, nor its broadcast
        var bytes = new byte[4];
        for (uint i = 2; i <= count; i++)
        {
            BinaryPrimitives.WriteUInt32BigEndian(bytes, first + i);
            var candidate = new IPAddress(bytes);
            if (!taken.Contains(candidate.ToString()))
                return $"{candidate}/{prefix}";
        }
        throw new InvalidOperationException($"the address pool {pool} has no address left");
    }

    /// <summary>The subnet's gateway, the bridge's address: its first address, with the prefix length.</summary>
    public static string Gateway(string cidr)
    {
        TryParse(cidr, out var address, out int prefix);
        var bytes = address.GetAddressBytes();
        for (int bit = prefix; bit < bytes.Length * 8; bit++)
            bytes[bit / 8] &= (byte)~(0x80 >> (bit % 8));
        bytes[^1] |= 1;
        return $"{new IPAddress(bytes)}/{prefix}";
    }

    /// <summary>
    /// The host's side, before the group's first program or a restore: the bridge (made if absent) up
    /// and holding the gateway, and the published ports' table (made again whole). Runs in amber's
    /// network namespace (any thread of the coordinator's). Null if done (or the group has no network
    /// of its own), else why not, as the coordinator answers it.
    /// </summary>
    public static string? PrepareHostProblem(GroupConfig config)
    {
        if (config.Net.Length == 0)
            return null;
        try
        {
            PrepareHost(config);
            return null;
        }
        catch (Exception e) when (e is Amber.Kernel.KernelCallException or IOException or UnauthorizedAccessException)
        {
            return $"group {config.Name}: its network cannot be set up: {e.Message}";
        }
    }

    private static void PrepareHost(GroupConfig config)
    {
        if (MacvlanLower(config.Net) is { } lower)
        {
            if (NetLinks.ByName(lower) is null)
                throw new IOException($"interface {lower} (--net {config.Net}) does not exist on the host");
            return;
        }
        string gateway = Gateway(config.Address);
        bool v6 = gateway.Contains(':');
        if (!NetLinks.IsBridge(config.Bridge))
        {
            try
            {
                IpRoute.Apply([$"link add {config.Bridge} type bridge"], $"bridge {config.Bridge}");
            }
            catch (Amber.Kernel.KernelCallException) when (NetLinks.IsBridge(config.Bridge))
            {
                // Another group's launch made it first.
            }
        }
        IpRoute.Apply([$"address replace {gateway} dev {config.Bridge}{(v6 ? " nodad" : "")}", $"link set {config.Bridge} up"], $"bridge {config.Bridge}");
        if (config.Publish.Count == 0)
            return;
        // A connection to 127.0.0.1:HOSTPORT goes out on the bridge with its loopback source (masqueraded).
        if (!v6)
            NetLinks.SetIpv4Setting(config.Bridge, "route_localnet", "1");
        Nftables.Apply(PublishScript(config), $"the published ports of group {config.Name}");
    }

    /// <summary>Takes the group's published ports away (its table), if it has any.</summary>
    public static void Unpublish(GroupConfig config)
    {
        if (config.Publish.Count == 0 || !Nftables.Installed)
            return;
        // Made first (empty, if it is not there), so that deleting it never fails: one transaction.
        string table = PublishTable(config), family = PublishFamily(config);
        Nftables.Apply($"table {family} {table}\ndelete table {family} {table}\n", $"the published ports of group {config.Name}");
    }

    /// <summary>Takes the group's published ports away if it can (after a failure: the failure is what is told).</summary>
    public static void TryUnpublish(GroupConfig config)
    {
        try
        {
            Unpublish(config);
        }
        catch (Amber.Kernel.KernelCallException)
        {
            // The table stays; the next launch or restore makes it again whole.
        }
    }

    /// <summary>
    /// On the calling thread (a spawn's own): a new network namespace, set up as the group's; what it
    /// returns takes the veth pair away again unless kept.
    /// </summary>
    public static NetworkRestorer.Made MakeNamespace(GroupConfig config)
    {
        using var amber = Namespaces.Hold(NamespaceKind.Net);
        Namespaces.Make([NamespaceKind.Net]);
        return NetworkRestorer.Make(Plan(config), amber);
    }

    /// <summary>What the group's namespace holds, in the form a checkpoint saves it.</summary>
    public static NamespacesImage Plan(GroupConfig config)
    {
        TryParse(config.Address, out var address, out int prefix);
        bool v6 = address.AddressFamily == AddressFamily.InterNetworkV6;
        var hash = XxHash3.Hash(Encoding.UTF8.GetBytes(config.HostLink));
        var inside = new NetAddressImage { Dev = Inside, Family = v6 ? "inet6" : "inet", Local = address.ToString(), PrefixLength = (uint)prefix, Scope = "global", ValidLifetime = uint.MaxValue, PreferredLifetime = uint.MaxValue };
        if (MacvlanLower(config.Net) is { } lower)
        {
            // On the host's interface, in bridge mode (groups on one interface reach each other); a
            // default route only through a router of that network that --gateway names.
            var link = NetLinks.ByName(lower) ?? throw new IOException($"interface {lower} (--net {config.Net}) does not exist on the host");
            var plan = new NamespacesImage
            {
                Net = true, LoopbackUp = true,
                Links = { new NetLinkImage { Name = Inside, Kind = NetworkRestorer.Macvlan, Mac = Mac(0x02, hash.AsSpan(0, 5)), Mtu = (uint)link.Mtu, Up = true, Lower = lower, Mode = "bridge" } },
                Addresses = { inside },
            };
            if (config.Gateway.Length > 0)
                plan.Routes.Add(new NetRouteImage { Family = inside.Family, Arguments = { v6 ? "::/0" : "default", "via", config.Gateway, "dev", Inside } });
            return plan;
        }
        string gateway = Gateway(config.Address).Split('/')[0];
        return new NamespacesImage
        {
            Net = true, LoopbackUp = true,
            Links =
            {
                new NetLinkImage
                {
                    Name = Inside, Kind = NetworkRestorer.Veth, Mac = Mac(0x02, hash.AsSpan(0, 5)), Mtu = 1500, Up = true,
                    Peer = config.HostLink, PeerMac = Mac(0x06, hash.AsSpan(3, 5)), PeerMtu = 1500, PeerMaster = config.Bridge, PeerUp = true,
                },
            },
            Addresses = { inside },
            Routes = { new NetRouteImage { Family = v6 ? "inet6" : "inet", Arguments = { v6 ? "::/0" : "default", "via", gateway, "dev", Inside } } },
        };
    }

    private static string PublishTable(GroupConfig config) => $"amber_publish_{config.HostLink}";

    /// <summary>The nftables family of the group's published ports' table: ip, or ip6 for an IPv6 address.</summary>
    private static string PublishFamily(GroupConfig config) => config.Address.Contains(':') ? "ip6" : "ip";

    private static string PublishScript(GroupConfig config)
    {
        string table = PublishTable(config), family = PublishFamily(config), target = config.Address.Split('/')[0];
        bool v6 = family == "ip6";
        var rules = new StringBuilder();
        foreach (var spec in config.Publish)
        {
            Publish.TryParse(spec, out var p);
            string to = p.HostAddress is null ? "fib daddr type local" : $"{family} daddr {p.HostAddress}";
            rules.Append(CultureInfo.InvariantCulture, $"    {to} {p.Protocol} dport {p.HostPort} dnat to {(v6 ? $"[{target}]" : target)}:{p.Port}\n");
        }
        // A connection from the host's own loopback: IPv4's 127/8 leaves on the bridge (route_localnet) with
        // its source masqueraded; IPv6's ::1 never leaves the loopback, so it is not published there.
        string loopback = v6 ? "    ip6 daddr ::1 return\n" : "";
        string masquerade = v6 ? "" : $"    oifname \"{config.Bridge}\" ip saddr 127.0.0.0/8 ip daddr {target} masquerade\n";
        // Made again whole, in one transaction: a table of the group's from before goes with it.
        return $"table {family} {table}\ndelete table {family} {table}\ntable {family} {table} {{\n"
            + $"  chain prerouting {{\n    type nat hook prerouting priority dstnat; policy accept;\n{rules}  }}\n"
            + $"  chain output {{\n    type nat hook output priority -100; policy accept;\n{loopback}{rules}  }}\n"
            + $"  chain postrouting {{\n    type nat hook postrouting priority srcnat; policy accept;\n{masquerade}  }}\n}}\n";
    }

    private static string Mac(byte first, ReadOnlySpan<byte> rest) =>
        string.Join(':', new[] { first }.Concat(rest.ToArray()).Select(b => b.ToString("x2", CultureInfo.InvariantCulture)));

    private static bool TryParse(string cidr, out IPAddress address, out int prefix)
    {
        address = IPAddress.None;
        prefix = 0;
        var parts = cidr.Split('/');
        return parts.Length == 2 && IPAddress.TryParse(parts[0], out address!) && address.AddressFamily is AddressFamily.InterNetwork or AddressFamily.InterNetworkV6
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out prefix) && prefix <= (address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128);
    }

    private static UInt128 Number(IPAddress address) => address.GetAddressBytes().Aggregate(UInt128.Zero, (n, b) => (n << 8) | b);

    /// <summary>One --publish: [HOSTIP:]HOSTPORT:PORT[/tcp|/udp].</summary>
    private readonly record struct Publish(string? HostAddress, int HostPort, int Port, string Protocol)
    {
        public static bool TryParse(string spec, out Publish publish)
        {
            publish = default;
            var (ports, protocol) = spec.Split('/') switch
            {
                [var p] => (p, "tcp"),
                [var p, "tcp" or "udp"] => (p, spec[(spec.IndexOf('/') + 1)..]),
                _ => ("", ""),
            };
            // [v6]:HOSTPORT:PORT: an IPv6 host address in brackets, as in a URL.
            string? host = null;
            if (ports.StartsWith('[') && ports.IndexOf("]:", StringComparison.Ordinal) is int close and > 1)
            {
                host = ports[1..close];
                if (!(IPAddress.TryParse(host, out var v6) && v6.AddressFamily == AddressFamily.InterNetworkV6) || host.Contains('%'))
                    return false;
                ports = ports[(close + 2)..];
            }
            var parts = ports.Split(':');
            if (host is null && parts.Length == 3)
            {
                host = parts[0];
                if (!(IPAddress.TryParse(host, out var v4) && v4.AddressFamily == AddressFamily.InterNetwork))
                    return false;
                parts = parts[1..];
            }
            if (parts.Length != 2)
                return false;
            if (!int.TryParse(parts[^2], NumberStyles.None, CultureInfo.InvariantCulture, out int hostPort) || hostPort is < 1 or > 65535
                || !int.TryParse(parts[^1], NumberStyles.None, CultureInfo.InvariantCulture, out int port) || port is < 1 or > 65535)
                return false;
            publish = new Publish(host, hostPort, port, protocol);
            return true;
        }
    }

    /// <summary>
    /// The interface of the network namespace of <paramref name="member"/> (a group's, about to be
    /// ended and restored) deleted: its connections say nothing more to their peers (no reset as its
    /// sockets close), and its address and MAC are free at once for the group made again, which a
    /// namespace kept alive by orphaned connections (retrying to a peer that is gone) would hold for
    /// minutes. A member already gone is no problem: the kill that follows is the same.
    /// </summary>
    public static void Unplug(int member) => InNamespaceOf(member, [$"link del {Inside}"]);

    /// <summary>
    /// The interface of the network namespace of <paramref name="member"/> (a group's with an address of
    /// its own, <paramref name="config"/>) taken down: nothing goes in or out (its connections neither
    /// answer nor retransmit); or up again, its default route with it (which going down removed).
    /// Why not, or null.
    /// </summary>
    public static string? SetLink(GroupConfig config, int member, bool up) =>
        InNamespaceOf(member, up
            ? [$"link set {Inside} up", .. config.Gateway.Length > 0 ? [$"route replace default via {config.Gateway} dev {Inside}"] : Array.Empty<string>()]
            : [$"link set {Inside} down"]);

    /// <summary>Runs ip <paramref name="commands"/> in <paramref name="member"/>'s network namespace: why not, or null.</summary>
    private static string? InNamespaceOf(int member, List<string> commands)
    {
        string? problem = null;
        // A thread of its own joins the namespace (setns acts on the calling thread; ip is forked from it).
        var thread = new Thread(() =>
        {
            try
            {
                Namespaces.Enter(member, NamespaceKind.Net);
                IpRoute.Apply(commands, "the group's interface");
            }
            catch (Exception e) when (e is KernelCallException or IOException)
            {
                problem = e.Message;
            }
        })
        { IsBackground = true, Name = "amber-group-link" };
        thread.Start();
        thread.Join();
        return problem;
    }
}
