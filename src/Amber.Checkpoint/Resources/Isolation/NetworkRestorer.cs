using System.Globalization;
using System.Net;
using System.Text.RegularExpressions;
using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Files;
using Amber.Kernel.Net;
using Amber.Kernel.Processes;

namespace Amber.Checkpoint.Resources.Isolation;

/// <summary>
/// A network namespace's interfaces, addresses, routes and nftables tables made again
/// (<see cref="OwnNetwork"/> saved them), by the thread that has just made the namespace and is in it.
/// Each veth pair is made inside, its other end sent to amber's namespace under its old name (and MAC:
/// the neighbours' caches stay right), where it is attached to its bridge; each macvlan is made from
/// amber's namespace on its interface there, straight into theirs (its MAC too); then addresses, routes
/// and tables inside. The <see cref="Made"/> it returns takes the pairs away again unless the restore
/// keeps them: a failed restore leaves no interface behind (one also ends with its namespace, but
/// later).
/// </summary>
public static partial class NetworkRestorer
{
    /// <summary>What was made, to take back if the restore (or launch) fails.</summary>
    public sealed class Made : IDisposable
    {
        private readonly List<NetLinkImage> _links;
        private readonly string _inside, _amber;
        private bool _kept;

        internal Made(List<NetLinkImage> links, string inside, string amber) => (_links, _inside, _amber) = (links, inside, amber);

        /// <summary>Nothing made.</summary>
        public static Made Nothing => new([], "", "");

        /// <summary>It all stays.</summary>
        public void Keep() => _kept = true;

        /// <summary>
        /// Deletes every veth pair made (both its ends go), from the new namespace by their names, or
        /// from amber's by their other ends' names: from whichever the calling thread is in; and from the
        /// new one, its macvlans (which otherwise go with it).
        /// </summary>
        public void Dispose()
        {
            if (_kept || _links.Count == 0)
                return;
            string here = Namespaces.OfThisThread(NamespaceKind.Net);
            // Veth pairs first: ip stops at the first that fails, and a macvlan may not have been made yet.
            var veths = _links.Where(l => l.Kind == Veth);
            var names = here == _inside ? veths.Concat(_links.Where(l => l.Kind == Macvlan)).Select(l => l.Name) : here == _amber ? veths.Select(l => l.Peer) : [];
            try
            {
                IpRoute.Apply([.. names.Select(n => $"link delete {n}")], "the interfaces of a failed restore");
            }
            catch (KernelCallException)
            {
                // They go with the namespace, when its last process has ended.
            }
            _links.Clear();
        }
    }

    /// <summary>
    /// Tells the network where their addresses are now (gratuitous ARP, unsolicited neighbour
    /// advertisements): for a group restored on another node, or one that runs on where it was after a
    /// move that did not complete. The calling thread must be in their network namespace. Never
    /// throws: returns what could not be sent.
    /// </summary>
    public static List<string> Announce(NamespacesImage? saved)
    {
        var problems = new List<string>();
        foreach (var link in saved?.Links ?? [])
        {
            var addresses = saved!.Addresses.Where(a => a.Dev == link.Name && IPAddress.TryParse(a.Local, out _)).Select(a => IPAddress.Parse(a.Local)).ToList();
            if (addresses.Count == 0 || link.Mac.Length == 0)
                continue;
            try
            {
                NeighbourAnnouncement.Announce(link.Name, link.Mac, addresses);
            }
            catch (Exception e) when (e is KernelCallException or ArgumentException)
            {
                problems.Add($"the addresses of {link.Name} could not be announced: {e.Message}");
            }
        }
        return problems;
    }

    /// <summary>
    /// Makes what <paramref name="saved"/> holds in the calling thread's network namespace, new, whose
    /// thread was in <paramref name="amber"/> (held before it made the new one; amber's main thread is
    /// there too).
    /// </summary>
    public static Made Make(NamespacesImage saved, HeldFile amber)
    {
        if (Problem(saved) is { } problem)
            throw new CheckpointException($"the network namespace cannot be made again: {problem}");
        if (saved.Links.Count == 0 && saved.Addresses.Count == 0 && saved.Routes.Count == 0 && saved.Nftables.Length == 0)
            return Made.Nothing;
        // ip's "netns PID" is /proc/PID/ns/net: amber's main thread must be where the restore started.
        if (!SameNamespace(amber))
            throw new CheckpointException("the restore's thread did not start in the network namespace of amber's main thread");
        string amberPid = Environment.ProcessId.ToString(CultureInfo.InvariantCulture);
        var made = Made.Nothing;
        try
        {
            var inside = new List<string>();
            foreach (var link in saved.Links.Where(l => l.Kind == Veth))
            {
                if (NetLinks.ByName(link.Peer) is not null)
                    throw new CheckpointException($"interface {link.Peer} (the other end of their {link.Name}) already exists here: are they running still?");
                if (link.PeerMaster.Length > 0 && !NetLinks.IsBridge(link.PeerMaster))
                    throw new CheckpointException($"bridge {link.PeerMaster}, which interface {link.Peer} (the other end of their {link.Name}) was attached to, does not exist here");
                inside.Add($"link add {link.Name} address {link.Mac} mtu {link.Mtu} type veth peer name {link.Peer} address {link.PeerMac} mtu {link.PeerMtu} netns {amberPid}");
            }
            var macvlans = saved.Links.Where(l => l.Kind == Macvlan).ToList();
            foreach (var link in macvlans)
            {
                if (NetLinks.ByName(link.Lower) is null)
                    throw new CheckpointException($"interface {link.Lower}, which their macvlan {link.Name} was on, does not exist here");
            }
            IpRoute.Apply(inside, "their interfaces");
            made = new Made([.. saved.Links], Namespaces.OfThisThread(NamespaceKind.Net), Namespaces.OfThisProcess(NamespaceKind.Net));
            if (macvlans.Count > 0)
            {
                // Made from amber's namespace, where the interface under each is, straight into theirs (ip's
                // "netns" takes a path: theirs as an fd of amber's).
                using var theirs = Namespaces.Hold(NamespaceKind.Net);
                Namespaces.Enter(amber, NamespaceKind.Net, "amber's network namespace");
                try
                {
                    IpRoute.Apply([.. macvlans.Select(m => $"link add link {m.Lower} name {m.Name} address {m.Mac} mtu {m.Mtu} netns /proc/{amberPid}/fd/{theirs.Fd} type macvlan mode {m.Mode}")],
                        "their macvlans");
                }
                finally
                {
                    Namespaces.Enter(theirs, NamespaceKind.Net, "their new network namespace");
                }
            }
            Faults.Check(FaultPoint.NetworkSetup);
            inside.Clear();
            inside.AddRange(saved.Links.Where(l => l.Up).Select(l => $"link set {l.Name} up"));
            foreach (var a in saved.Addresses)
                inside.Add(AddressCommand(a));
            inside.AddRange(saved.Routes.Select(r => "route replace " + string.Join(' ', r.Arguments)));
            IpRoute.Apply(inside, "their addresses and routes");
            // The other ends, in amber's namespace.
            var outside = saved.Links.Where(l => l.PeerMaster.Length > 0).Select(l => $"link set {l.Peer} master {l.PeerMaster}")
                .Concat(saved.Links.Where(l => l.PeerUp).Select(l => $"link set {l.Peer} up")).ToList();
            if (outside.Count > 0)
            {
                using var theirs = Namespaces.Hold(NamespaceKind.Net);
                Namespaces.Enter(amber, NamespaceKind.Net, "amber's network namespace");
                try
                {
                    IpRoute.Apply(outside, "the other ends of their interfaces");
                }
                finally
                {
                    Namespaces.Enter(theirs, NamespaceKind.Net, "their new network namespace");
                }
            }
            if (saved.Nftables.Length > 0)
                Nftables.Apply(saved.Nftables, "their nftables tables");
            return made;
        }
        catch
        {
            made.Dispose();
            throw;
        }
    }

    private static string AddressCommand(NetAddressImage a)
    {
        var words = new List<string> { "address replace", $"{a.Local}/{a.PrefixLength}" };
        if (a.Peer.Length > 0)
            words.AddRange(["peer", a.Peer]);
        if (a.Broadcast.Length > 0)
            words.AddRange(["broadcast", a.Broadcast]);
        if (a.Scope.Length > 0)
            words.AddRange(["scope", a.Scope]);
        if (a.Label.Length > 0)
            words.AddRange(["label", a.Label]);
        words.AddRange(["dev", a.Dev]);
        if (a.ValidLifetime != uint.MaxValue)
            words.AddRange(["valid_lft", a.ValidLifetime.ToString(CultureInfo.InvariantCulture), "preferred_lft", a.PreferredLifetime.ToString(CultureInfo.InvariantCulture)]);
        words.AddRange(a.Flags);
        // Usable at once, as it was: a connection bound to it is made again before any duplicate detection would end.
        if (a.Family == "inet6" && !a.Flags.Contains("nodad"))
            words.Add("nodad");
        return string.Join(' ', words);
    }

    /// <summary>
    /// Why saved network state cannot be made again safely, or null: every word given to ip must be
    /// one word of the expected form (a name of an interface, a MAC, an address, a route's argument),
    /// so that no image can add a command of its own; and an nftables text includes no file.
    /// </summary>
    public static string? Problem(NamespacesImage saved)
    {
        foreach (var link in saved.Links)
        {
            bool veth = link.Kind == Veth;
            if (!veth && link.Kind != Macvlan)
                return $"interface {link.Name} is of kind '{link.Kind}'";
            if (!veth && !IsMacvlanMode(link.Mode))
                return $"macvlan {link.Name}: mode '{link.Mode}'";
            foreach (var name in veth ? new[] { link.Name, link.Peer }.Concat(link.PeerMaster.Length > 0 ? [link.PeerMaster] : []) : [link.Name, link.Lower])
            {
                if (!InterfaceName().IsMatch(name) || name == "lo")
                    return $"'{name}' is not an interface's name";
            }
            foreach (var mac in veth ? [link.Mac, link.PeerMac] : new[] { link.Mac })
            {
                if (!MacAddress().IsMatch(mac))
                    return $"'{mac}' is not a MAC address";
            }
            if (link.Mtu is < 68 or > 65535 || (veth && link.PeerMtu is < 68 or > 65535))
                return $"interface {link.Name}: an MTU of {link.Mtu}{(veth ? $"/{link.PeerMtu}" : "")}";
        }
        foreach (var a in saved.Addresses)
        {
            if (!InterfaceName().IsMatch(a.Dev) || a.Family is not ("inet" or "inet6") || !IPAddress.TryParse(a.Local, out _)
                || a.PrefixLength > (a.Family == "inet" ? 32u : 128u) || new[] { a.Peer, a.Broadcast, a.Scope, a.Label }.Concat(a.Flags).Any(w => w.Length > 0 && !RouteWord().IsMatch(w)))
                return $"address '{a.Local}/{a.PrefixLength}' of '{a.Dev}' is not one";
        }
        foreach (var route in saved.Routes)
        {
            if (route.Arguments.Count == 0 || route.Arguments.Any(w => !RouteWord().IsMatch(w)) || route.Family is not ("inet" or "inet6"))
                return $"route '{string.Join(' ', route.Arguments)}' is not one";
        }
        if (saved.Nftables.Split('\n').Any(l => l.TrimStart().StartsWith("include", StringComparison.Ordinal)))
            return "the nftables tables include a file";
        return null;
    }

    /// <summary>The kinds of interface saved and made again.</summary>
    public const string Veth = "veth", Macvlan = "macvlan";

    /// <summary>Whether <paramref name="mode"/> is a macvlan mode made again (source mode's list of MACs is not saved).</summary>
    public static bool IsMacvlanMode(string mode) => mode is "private" or "vepa" or "bridge" or "passthru";

    /// <summary>Whether <paramref name="name"/> can name an interface: at most 15 letters, digits, '_', '.', '-'.</summary>
    public static bool IsInterfaceName(string name) => InterfaceName().IsMatch(name);

    private static bool SameNamespace(HeldFile held) =>
        new FileInfo($"/proc/self/fd/{held.Fd}").LinkTarget == Namespaces.OfThisProcess(NamespaceKind.Net);

    [GeneratedRegex("^[A-Za-z0-9_.-]{1,15}$")]
    private static partial Regex InterfaceName();

    [GeneratedRegex("^[0-9a-f]{2}(:[0-9a-f]{2}){5}$")]
    private static partial Regex MacAddress();

    [GeneratedRegex("^[A-Za-z0-9_.:/%+-]{1,64}$")]
    private static partial Regex RouteWord();
}
