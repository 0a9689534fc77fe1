using System.Globalization;
using System.Text;
using System.Text.Json;
using Amber.Image.Schema;
using Amber.Kernel.Net;

namespace Amber.Checkpoint.Resources.Isolation;

/// <summary>
/// What a network namespace of their own holds besides its sockets, read on the checkpoint's thread
/// (which has joined it): its interfaces other than loopback (veth pairs whose other end is in amber's
/// namespace, with the bridge that end is attached to; macvlans on an interface of amber's), their addresses, the routes the kernel does
/// not make by itself, and its nftables tables. <see cref="NetworkRestorer"/> makes them again. Anything
/// else that would not come back (another kind of interface, policy routing rules, a multipath or
/// encapsulating route) is refused by name rather than lost.
/// </summary>
internal static class OwnNetwork
{
    /// <summary>Address flags that ip address add takes back; the others the kernel sets itself.</summary>
    private static readonly string[] SettableFlags = ["home", "nodad", "mngtmpaddr", "noprefixroute"];

    /// <summary>Reads it into <paramref name="image"/>; <paramref name="pid"/> names the processes in a refusal.</summary>
    public static void Read(NamespacesImage image, int pid)
    {
        var answers = IpRoute.Query(["link show", "address show", "route show table all", "route show table all root ::/0", "rule show"], $"the network namespace of process {pid}");
        foreach (var link in answers[0].EnumerateArray())
        {
            string name = Text(link, "ifname");
            if (name == "lo")
                continue;
            image.Links.Add(Link(link, name, pid));
        }
        foreach (var link in answers[1].EnumerateArray())
        {
            string name = Text(link, "ifname");
            if (!link.TryGetProperty("addr_info", out var addresses))
                continue;
            foreach (var a in addresses.EnumerateArray())
            {
                var address = Address(a, name);
                // Loopback's own addresses come with every new namespace.
                if (name == "lo" && (address.Local, address.PrefixLength) is ("127.0.0.1", 8) or ("::1", 128))
                    continue;
                image.Addresses.Add(address);
            }
        }
        foreach (var (routes, family) in new[] { (answers[2], "inet"), (answers[3], "inet6") })
        {
            foreach (var route in routes.EnumerateArray())
            {
                // The kernel makes these again with the addresses (and router advertisements theirs).
                if (Text(route, "table") == "local" || Text(route, "protocol") is "kernel" or "ra")
                    continue;
                image.Routes.Add(new NetRouteImage { Family = family, Arguments = { Route(route, family, pid) } });
            }
        }
        var rules6 = IpRoute.Query(["rule show"], $"the network namespace of process {pid}", ipv6: true)[0];
        foreach (var (rules, family) in new[] { (answers[4], "IPv4"), (rules6, "IPv6") })
        {
            foreach (var rule in rules.EnumerateArray())
            {
                string table = Text(rule, "table");
                long priority = rule.TryGetProperty("priority", out var p) ? p.GetInt64() : -1;
                if ((priority, table) is not ((0, "local") or (32766, "main") or (32767, "default")) || rule.EnumerateObject().Any(f => f.Name is not ("priority" or "src" or "table" or "protocol")))
                    throw new UnsupportedResourceException(pid, $"{family} routing rule {priority} (table {table}) of its network namespace", "a policy routing rule");
            }
        }
        if (Nftables.Installed)
        {
            var tables = new StringBuilder();
            // The network lock's tables are amber's, not theirs.
            foreach (var (family, name) in Nftables.AllTables().Where(t => !t.Name.StartsWith(Sockets.NetworkLock.TablePrefix, StringComparison.Ordinal)))
                tables.Append(Nftables.ListTable(family, name));
            image.Nftables = tables.ToString();
        }
    }

    private static NetLinkImage Link(JsonElement link, string name, int pid)
    {
        string kind = link.TryGetProperty("linkinfo", out var info) ? Text(info, "info_kind") : "";
        string where = $"interface {name} of its network namespace";
        if (kind == NetworkRestorer.Macvlan)
            return Macvlan(link, info, name, where, pid);
        if (kind != NetworkRestorer.Veth)
            throw new UnsupportedResourceException(pid, where, kind.Length > 0 ? $"a {kind} interface" : "a physical interface", "only veth pairs and macvlans are saved so far");
        int index = link.GetProperty("ifindex").GetInt32();
        // Its other end, in amber's namespace (sysfs), names this one as its peer.
        var peer = link.TryGetProperty("link_netnsid", out _) && link.TryGetProperty("link_index", out var peerIndex) ? NetLinks.ByIndex(peerIndex.GetInt32()) : null;
        if (peer is null || peer.PeerIndex != index)
            throw new UnsupportedResourceException(pid, where, "a veth whose other end is not in amber's network namespace");
        return new NetLinkImage
        {
            Name = name, Kind = kind, Mac = Text(link, "address"), Mtu = link.GetProperty("mtu").GetUInt32(), Up = Flags(link).Contains("UP"),
            Peer = peer.Name, PeerMac = peer.Mac, PeerMtu = (uint)peer.Mtu, PeerMaster = peer.Master ?? "", PeerUp = peer.Up,
        };
    }

    /// <summary>
    /// A macvlan on an interface of another namespace, taken for amber's (its index names one there):
    /// the restore makes it again on that one. One on an interface of its own namespace would need
    /// that one first: refused, as one in source mode (its list of MACs is not read).
    /// </summary>
    private static NetLinkImage Macvlan(JsonElement link, JsonElement info, string name, string where, int pid)
    {
        var lower = link.TryGetProperty("link_netnsid", out _) && link.TryGetProperty("link_index", out var lowerIndex) ? NetLinks.ByIndex(lowerIndex.GetInt32()) : null;
        if (lower is null)
            throw new UnsupportedResourceException(pid, where, "a macvlan on an interface that is not in amber's network namespace");
        string mode = info.TryGetProperty("info_data", out var data) ? Text(data, "mode") : "";
        if (!NetworkRestorer.IsMacvlanMode(mode))
            throw new UnsupportedResourceException(pid, where, $"a macvlan in {(mode.Length > 0 ? mode : "an unknown")} mode");
        return new NetLinkImage
        {
            Name = name, Kind = NetworkRestorer.Macvlan, Mac = Text(link, "address"), Mtu = link.GetProperty("mtu").GetUInt32(), Up = Flags(link).Contains("UP"),
            Lower = lower.Name, Mode = mode,
        };
    }

    private static NetAddressImage Address(JsonElement a, string dev)
    {
        var address = new NetAddressImage
        {
            Dev = dev, Family = Text(a, "family"), Local = Text(a, "local"), PrefixLength = a.GetProperty("prefixlen").GetUInt32(),
            Peer = Text(a, "address"), Broadcast = Text(a, "broadcast"), Scope = Text(a, "scope"), Label = Text(a, "label"),
            ValidLifetime = a.TryGetProperty("valid_life_time", out var valid) ? valid.GetUInt32() : uint.MaxValue,
            PreferredLifetime = a.TryGetProperty("preferred_life_time", out var preferred) ? preferred.GetUInt32() : uint.MaxValue,
        };
        address.Flags.AddRange(SettableFlags.Where(f => a.TryGetProperty(f, out var set) && set.ValueKind == JsonValueKind.True));
        return address;
    }

    /// <summary>The arguments of ip route add that make <paramref name="route"/> again.</summary>
    private static List<string> Route(JsonElement route, string family, int pid)
    {
        string dst = Text(route, "dst");
        foreach (var unsupported in new[] { "nexthops", "encap", "nhid", "via", "multipath" })
        {
            if (route.TryGetProperty(unsupported, out _))
                throw new UnsupportedResourceException(pid, $"route {dst} of its network namespace", $"a route with {unsupported}");
        }
        // "default" alone would be taken for IPv4's.
        var arguments = new List<string>();
        if (Text(route, "type") is { Length: > 0 } type && type != "unicast")
            arguments.Add(type);
        arguments.Add(dst == "default" && family == "inet6" ? "::/0" : dst);
        foreach (var (key, argument) in new[] { ("gateway", "via"), ("dev", "dev"), ("protocol", "proto"), ("scope", "scope"), ("prefsrc", "src"), ("pref", "pref") })
        {
            if (Text(route, key) is { Length: > 0 } value)
                arguments.AddRange([argument, value]);
        }
        if (Text(route, "table") is { Length: > 0 } table && table != "main")
            arguments.AddRange(["table", table]);
        if (route.TryGetProperty("metric", out var metric))
            arguments.AddRange(["metric", metric.GetUInt32().ToString(CultureInfo.InvariantCulture)]);
        if (Flags(route).Contains("onlink"))
            arguments.Add("onlink");
        if (route.TryGetProperty("metrics", out var metrics))
        {
            foreach (var m in metrics.EnumerateArray().SelectMany(o => o.EnumerateObject()))
                arguments.AddRange([m.Name, m.Value.ValueKind == JsonValueKind.Number ? m.Value.GetRawText() : m.Value.GetString() ?? ""]);
        }
        return arguments;
    }

    private static List<string> Flags(JsonElement e) =>
        e.TryGetProperty("flags", out var flags) && flags.ValueKind == JsonValueKind.Array ? [.. flags.EnumerateArray().Select(f => f.GetString() ?? "")] : [];

    private static string Text(JsonElement e, string key) =>
        e.TryGetProperty(key, out var v) ? v.ValueKind == JsonValueKind.String ? v.GetString() ?? "" : v.GetRawText() : "";
}
