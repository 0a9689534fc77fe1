using Amber.Image.Schema;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.Isolation;

/// <summary>
/// The namespaces a checkpoint's processes have of their own (UTS, IPC, network, PID and mount so far),
/// saved with them and made again by the restore. The checkpoint's thread joins the first three before
/// the freeze, so that what it reads of them (the System V objects in /proc/sysvipc, the host name, the
/// sockets sock_diag lists, the network lock nft sets) is theirs, and every process it checks is
/// compared with them. A PID namespace is only named (joining one would put what the thread spawns,
/// nft, in it), and its processes' ids in it are what the image keeps (<see cref="ImagePids"/>); so is
/// a mount namespace (a thread of amber's cannot join one), read from outside (<see cref="OwnMounts"/>). They
/// must be the checkpoint's alone: a process outside it in one of them would lose it (or share a copy)
/// once restored, so it is refused by name.
/// </summary>
internal sealed class OwnNamespaces
{
    private static readonly NamespaceKind[] Saved = [NamespaceKind.Uts, NamespaceKind.Ipc, NamespaceKind.Net, NamespaceKind.Pid, NamespaceKind.Mount];

    /// <summary>Kinds the checkpoint's thread does not join (it must not, or cannot), only names.</summary>
    private static readonly NamespaceKind[] NotJoined = [NamespaceKind.Pid, NamespaceKind.Mount];

    private readonly Dictionary<NamespaceKind, string> _ids;

    private OwnNamespaces(Dictionary<NamespaceKind, string> ids) => _ids = ids;

    /// <summary>None of their own: the processes are in amber's namespaces.</summary>
    public static OwnNamespaces None { get; } = new([]);

    /// <summary>The kinds the processes have of their own.</summary>
    public IReadOnlyCollection<NamespaceKind> Kinds => _ids.Keys;

    /// <summary>Their PID namespace ("pid:[4026532...]"), null if they are in amber's.</summary>
    public string? PidNamespace => _ids.GetValueOrDefault(NamespaceKind.Pid);

    /// <summary>
    /// Their namespaces the thread has not joined, by /proc/PID/ns name ("pid", "mnt"): what the
    /// processes are checked against instead of the thread's (ResourceChecks).
    /// </summary>
    public IReadOnlyDictionary<string, string> NotJoinedByName =>
        _ids.Where(i => NotJoined.Contains(i.Key)).ToDictionary(i => i.Key.ProcName(), i => i.Value);

    /// <summary>
    /// Joins (on the calling thread, a checkpoint's own) the namespaces of <paramref name="pid"/>, a
    /// process of the checkpoint, that differ from the thread's; a PID namespace is only noted.
    /// </summary>
    public static OwnNamespaces Join(int pid)
    {
        var ids = new Dictionary<NamespaceKind, string>();
        foreach (var kind in Saved)
        {
            string? theirs = Namespaces.Of(pid, kind);
            if (theirs is not null && theirs != Namespaces.OfThisThread(kind))
            {
                if (!NotJoined.Contains(kind))
                    Namespaces.Enter(pid, kind);
                ids[kind] = theirs;
            }
        }
        return new OwnNamespaces(ids);
    }

    /// <summary>
    /// Refuses namespaces that a process outside the checkpoint (<paramref name="members"/>) is in
    /// too. A PID namespace's PID 1, which the restore makes first, is so always a member: a namespace
    /// whose PID 1 has ended has no process left. The root's parent (<paramref name="rootParent"/>)
    /// may share them: it is never restored with the tree anyway (unshare --fork and nsenter wait there
    /// for their child); a warning says it.
    /// </summary>
    public List<string> CheckOwned(IReadOnlyList<int> members, int rootParent)
    {
        if (_ids.Count == 0)
            return [];
        var warnings = new List<string>();
        if (rootParent > 1 && _ids.Where(i => Namespaces.Of(rootParent, i.Key) == i.Value).Select(i => i.Key.ProcName()).ToList() is { Count: > 0 } shared)
        {
            string name = ProcFs.TryReadStatus(rootParent, out var parent) && parent is not null ? $" ('{parent.Name}')" : "";
            warnings.Add($"process {rootParent}{name}, the parent of process {members[0]}, shares its {string.Join(", ", shared)} namespace{(shared.Count > 1 ? "s" : "")}: "
                + "restored, the processes have new ones of their own, without it");
        }
        if (Namespaces.FirstOtherIn(_ids, members.Append(rootParent).ToHashSet()) is var (outsider, kind))
        {
            string name = ProcFs.TryReadStatus(outsider, out var status) && status is not null ? $" ('{status.Name}')" : "";
            throw new UnsupportedResourceException(members.First(), $"its {kind.ProcName()} namespace {_ids[kind]}",
                $"a {kind.ProcName()} namespace shared with process {outsider}{name}, which is not checkpointed with it");
        }
        return warnings;
    }

    /// <summary>
    /// What the manifest keeps of them, read now (the host name, the interfaces, addresses, routes and
    /// nftables tables as they are at the freeze); null if none. <paramref name="pid"/> names them in a refusal.
    /// </summary>
    public NamespacesImage? Image(int pid)
    {
        if (_ids.Count == 0)
            return null;
        var image = new NamespacesImage
        {
            Ipc = Kinds.Contains(NamespaceKind.Ipc), Net = Kinds.Contains(NamespaceKind.Net), Pid = Kinds.Contains(NamespaceKind.Pid), Mount = Kinds.Contains(NamespaceKind.Mount),
        };
        if (image.Net)
        {
            image.LoopbackUp = Namespaces.IsUp("lo");
            OwnNetwork.Read(image, pid);
        }
        if (Kinds.Contains(NamespaceKind.Uts))
        {
            image.Uts = true;
            image.Hostname = Namespaces.HostName();
            image.Domainname = Namespaces.DomainName();
        }
        return image;
    }
}
