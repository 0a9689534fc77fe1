using System.Globalization;
using System.Net.Sockets;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Proc;

namespace Amber.Coordinator.Security;

/// <summary>
/// Who asks the coordinator for something, as the kernel says (peer credentials of the control
/// socket at connect time): the coordinator acts for a user with that user's rights only. Root is
/// anyone; any other user may bring back only processes that ran with credentials it holds itself.
/// </summary>
/// <param name="Groups">The primary group and the supplementary groups.</param>
/// <param name="Capabilities">The permitted capabilities (0 for an ordinary user).</param>
public sealed record Requester(uint Uid, uint Gid, IReadOnlyList<uint> Groups, ulong Capabilities)
{
    private static readonly string[] UidKinds = ["real", "effective", "saved", "filesystem"];
    private static readonly (int Set, string Name)[] CapabilitySets = [(0, "inheritable"), (1, "permitted"), (2, "effective"), (4, "ambient")];

    public static Requester Root { get; } = new(0, 0, [0], ulong.MaxValue);

    public bool IsRoot => Uid == 0;

    /// <summary>The requesting process (the CLI) at connect time: whose fds a request may name (0: none known).</summary>
    public int Pid { get; init; }

    /// <summary>
    /// The peer of a connected unix socket: uid, gid and groups as they were at connect time
    /// (SO_PEERCRED, SO_PEERGROUPS). Its capabilities are read from /proc, and only if the process
    /// there is still of that uid (its pid may have been reused); otherwise it holds none.
    /// </summary>
    public static Requester Of(Socket socket)
    {
        var (pid, uid, gid) = PeerCredentials.Of(socket);
        var all = PeerCredentials.GroupsOf(socket).Prepend(gid).Distinct().ToList();
        ulong capabilities = ProcFs.TryReadStatus(pid, out var status) && status is not null && status.Uids.All(u => u == uid) ? status.Capabilities[1] : 0;
        return new Requester(uid, gid, all, uid == 0 ? ulong.MaxValue : capabilities) { Pid = pid };
    }

    /// <summary>
    /// Why this requester may not bring back the saved process, naming it and the credential, or null:
    /// every uid must be the requester's, every group one it is in, every capability (but the
    /// bounding set, which only takes away) one it holds.
    /// </summary>
    public string? Refuses(ProcessImage image)
    {
        if (IsRoot || image.Creds is not { } creds)
            return null;
        string who = $"process {image.Pid} ('{image.Comm}')";
        string refusal = $"a restore for uid {Uid} brings back only processes with credentials it holds";
        for (int i = 0; i < creds.Uids.Count; i++)
        {
            if (creds.Uids[i] != Uid)
                return $"{who} ran as uid {creds.Uids[i]} ({UidKinds[Math.Min(i, 3)]}); {refusal}";
        }
        foreach (uint gid in creds.Gids.Concat(creds.Groups))
        {
            if (!Groups.Contains(gid))
                return $"{who} ran with group {gid}, which uid {Uid} is not in; {refusal}";
        }
        foreach (var (set, name) in CapabilitySets)
        {
            if (set < creds.Capabilities.Count && (creds.Capabilities[set] & ~Capabilities) is var extra and not 0)
                return $"{who} held {name} capabilities {extra:x} that uid {Uid} does not hold; {refusal}";
        }
        return null;
    }

    /// <summary>How a worker is told for whom it restores (see <see cref="Parse"/>).</summary>
    public string ToArgument() =>
        string.Create(CultureInfo.InvariantCulture, $"{Uid}:{string.Join(',', Groups)}:{Capabilities:x}");

    /// <summary>"UID:GID,GROUP...:CAPABILITIES" (hex), the primary group first.</summary>
    public static Requester Parse(string text)
    {
        var parts = text.Split(':');
        var groups = parts[1].Split(',').Select(g => uint.Parse(g, CultureInfo.InvariantCulture)).ToList();
        return new Requester(uint.Parse(parts[0], CultureInfo.InvariantCulture), groups[0], groups, ulong.Parse(parts[2], NumberStyles.HexNumber, CultureInfo.InvariantCulture));
    }
}
