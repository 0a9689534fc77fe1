using Amber.Image.Schema;
using Amber.Kernel.Processes;

namespace Amber.Checkpoint.Resources.Isolation;

/// <summary>
/// The namespaces the processes had of their own, made again before any of them: new ones, on the
/// restore's own thread, which every process it makes from then on is born in (and which end with
/// their last process, so a failed restore leaves none behind), given what was saved of them: the host
/// and domain names, the loopback's state; the System V objects and the sockets are made again inside
/// by their own restorers.
/// </summary>
internal static class NamespaceRestorer
{
    public static void Make(NamespacesImage? saved)
    {
        if (saved is null)
            return;
        var kinds = new List<NamespaceKind>();
        if (saved.Uts)
            kinds.Add(NamespaceKind.Uts);
        if (saved.Ipc)
            kinds.Add(NamespaceKind.Ipc);
        if (saved.Net)
            kinds.Add(NamespaceKind.Net);
        Namespaces.Make(kinds, saved.Hostname, saved.Domainname, saved.LoopbackUp);
    }
}
