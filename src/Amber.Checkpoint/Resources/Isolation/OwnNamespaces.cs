using Amber.Image.Schema;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Isolation;

/// <summary>
/// The namespaces a checkpoint's processes have of their own (UTS, IPC and network so far), saved
/// with them and made again by the restore. The checkpoint's thread joins them before the freeze, so
/// that what it reads of them (the System V objects in /proc/sysvipc, the host name, the sockets
/// sock_diag lists, the network lock nft sets) is theirs, and every process it checks is compared with
/// them. They must be the checkpoint's alone: a process outside it in one of them would lose it (or
/// share a copy) once restored, so it is refused by name.
/// </summary>
internal sealed class OwnNamespaces
{
    private static readonly NamespaceKind[] Saved = [NamespaceKind.Uts, NamespaceKind.Ipc, NamespaceKind.Net];

    private OwnNamespaces(List<NamespaceKind> kinds) => Kinds = kinds;

    /// <summary>None of their own: the processes are in amber's namespaces.</summary>
    public static OwnNamespaces None { get; } = new([]);

    /// <summary>The kinds the processes have of their own.</summary>
    public IReadOnlyList<NamespaceKind> Kinds { get; }

    /// <summary>
    /// Joins (on the calling thread, a checkpoint's own) the namespaces of <paramref name="pid"/>, a
    /// process of the checkpoint, that differ from the thread's.
    /// </summary>
    public static OwnNamespaces Join(int pid)
    {
        var kinds = new List<NamespaceKind>();
        foreach (var kind in Saved)
        {
            string? theirs = Namespaces.Of(pid, kind);
            if (theirs is not null && theirs != Namespaces.OfThisThread(kind))
            {
                Namespaces.Enter(pid, kind);
                kinds.Add(kind);
            }
        }
        return new OwnNamespaces(kinds);
    }

    /// <summary>Refuses namespaces that a process outside the checkpoint (<paramref name="members"/>) is in too.</summary>
    public void CheckOwned(IReadOnlyCollection<int> members)
    {
        if (Kinds.Count == 0)
            return;
        var namespaces = Kinds.ToDictionary(k => k, Namespaces.OfThisThread);
        if (Namespaces.FirstOtherIn(namespaces, members.ToHashSet()) is var (outsider, kind))
        {
            string name = ProcFs.TryReadStatus(outsider, out var status) && status is not null ? $" ('{status.Name}')" : "";
            throw new UnsupportedResourceException(members.First(), $"its {kind.ProcName()} namespace {namespaces[kind]}",
                $"a {kind.ProcName()} namespace shared with process {outsider}{name}, which is not checkpointed with it");
        }
        // A network namespace is made again with its loopback; other interfaces are not yet.
        if (Kinds.Contains(NamespaceKind.Net) && Namespaces.Interfaces().FirstOrDefault(i => i != "lo") is { } other)
            throw new UnsupportedResourceException(members.First(), $"interface {other} of its network namespace {namespaces[NamespaceKind.Net]}",
                "a network interface other than loopback");
    }

    /// <summary>What the manifest keeps of them, read now (the host name as it is at the freeze); null if none.</summary>
    public NamespacesImage? Image()
    {
        if (Kinds.Count == 0)
            return null;
        var image = new NamespacesImage { Ipc = Kinds.Contains(NamespaceKind.Ipc), Net = Kinds.Contains(NamespaceKind.Net) };
        if (image.Net)
            image.LoopbackUp = Namespaces.IsUp("lo");
        if (Kinds.Contains(NamespaceKind.Uts))
        {
            image.Uts = true;
            image.Hostname = Namespaces.HostName();
            image.Domainname = Namespaces.DomainName();
        }
        return image;
    }
}
