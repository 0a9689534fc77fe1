using Amber.Image.Schema;
using Amber.Kernel.Processes;

namespace Amber.Checkpoint.Resources.Isolation;

/// <summary>
/// The namespaces the processes had of their own, made again before any of them: new ones, on the
/// restore's own thread, which every process it makes from then on is born in (and which end with
/// their last process, so a failed restore leaves none behind), given what was saved of them: the host
/// and domain names, the loopback's state; the System V objects and the sockets are made again inside
/// by their own restorers; the network's
/// interfaces, addresses, routes and tables by <see cref="NetworkRestorer"/>.
/// </summary>
internal static class NamespaceRestorer
{
    /// <summary>
    /// Makes them; what it returns takes their network interfaces away again unless kept
    /// (<see cref="NetworkRestorer.Made.Keep"/>). <paramref name="beforeInterfaces"/> runs once in the
    /// network namespace the processes will have, before any interface of it is up: their connections'
    /// lock goes on there first, or a peer's packet arriving before their sockets would be answered
    /// with a reset.
    /// </summary>
    public static NetworkRestorer.Made Make(NamespacesImage? saved, Action beforeInterfaces)
    {
        if (saved is null)
        {
            beforeInterfaces();
            return NetworkRestorer.Made.Nothing;
        }
        var kinds = new List<NamespaceKind>();
        if (saved.Uts)
            kinds.Add(NamespaceKind.Uts);
        if (saved.Ipc)
            kinds.Add(NamespaceKind.Ipc);
        if (saved.Net)
            kinds.Add(NamespaceKind.Net);
        using var amber = saved.Net ? Namespaces.Hold(NamespaceKind.Net) : null;
        // A new network namespace's loopback is brought up after the lock (Namespaces.Make leaves it down).
        Namespaces.Make(kinds, saved.Hostname, saved.Domainname, loopbackUp: false);
        beforeInterfaces();
        if (saved.Net && saved.LoopbackUp)
            Namespaces.BringUp("lo");
        return amber is null ? NetworkRestorer.Made.Nothing : NetworkRestorer.Make(saved, amber);
    }
}
