namespace Amber.Coordinator.Groups;

/// <summary>
/// What the coordinator keeps of a group on disk (state/groups/NAME/group.json), so that a restarted
/// coordinator finds its groups again: its settings, the roots of its process trees, its history.
/// </summary>
public sealed class GroupConfig
{
    public string Name { get; set; } = "";

    /// <summary>The user who made the group; besides root, the only one the coordinator takes requests from for it.</summary>
    public uint Owner { get; set; }

    public uint OwnerGid { get; set; }

    /// <summary>The owner's groups (the primary one first) and permitted capabilities when it made the group: what a restart on failure restores for.</summary>
    public List<uint> OwnerGroups { get; set; } = [];

    public ulong OwnerCapabilities { get; set; }

    /// <summary>For a user's group: which directory its store was (device, inode) when the owner was found allowed to write it.</summary>
    public ulong StoreDevice { get; set; }

    public ulong StoreInode { get; set; }

    /// <summary>Where the group's checkpoints go (one directory each).</summary>
    public string Store { get; set; } = "";

    /// <summary>Seconds between scheduled checkpoints; 0: none.</summary>
    public double EverySeconds { get; set; }

    /// <summary>Directories captured with each checkpoint at the same barrier (storage checkpoints), rolled back by a restore.</summary>
    public List<string> Storage { get; set; } = [];

    /// <summary>
    /// Its storage is on a file system the nodes share (NFS, CephFS...): a migration leaves it in place
    /// rather than sending it, once the destination is seen to have the very same directories.
    /// </summary>
    public bool SharedStorage { get; set; }

    public bool RestartOnFailure { get; set; }

    /// <summary>A group across nodes, when a node is lost: <see cref="LostOnly"/> (only its parts restored elsewhere, the others run on); empty: the whole group rolled back to its latest checkpoint across nodes.</summary>
    public string NodeLoss { get; set; } = "";

    /// <summary>The <see cref="NodeLoss"/> of a group whose parts are independent.</summary>
    public const string LostOnly = "lost-only";

    /// <summary>An incremental checkpoint that refers to this many earlier ones is folded into a full one (in the background).</summary>
    public int MergeAfter { get; set; } = 8;

    /// <summary>A chain whose incremental checkpoints hold more than this many bytes together is folded too; 0: no such limit.</summary>
    public long MergeAboveBytes { get; set; }

    /// <summary>Retention: the latest this many checkpoints are kept, older ones removed (0: no such rule).</summary>
    public int KeepLast { get; set; }

    /// <summary>Retention: the checkpoints of the last this many seconds are kept (0: no such rule).</summary>
    public double KeepForSeconds { get; set; }

    /// <summary>Compression of the memory pages its checkpoints store: none, zstd, lz4.</summary>
    public string Compress { get; set; } = "none";

    /// <summary>How long registered programs get to prepare for a checkpoint (their BeforeCheckpoint).</summary>
    public double DeadlineSeconds { get; set; } = 5;

    /// <summary>The namespaces the group has of its own (pid, uts, ipc, net, mount): its programs start in them, and its checkpoints make them again.</summary>
    public List<string> Isolate { get; set; } = [];

    /// <summary>With a UTS namespace of its own: the host name its first program starts with.</summary>
    public string Hostname { get; set; } = "";

    /// <summary>"bridge": an address of its own on amber's bridge (GroupNetwork); empty: loopback only, or amber's network.</summary>
    public string Net { get; set; } = "";

    /// <summary>With a network: its address and prefix length (10.177.0.2/16).</summary>
    public string Address { get; set; } = "";

    /// <summary>With a macvlan: its default route's router (--gateway); empty: none.</summary>
    public string Gateway { get; set; } = "";

    /// <summary>With a network: the bridge its veth pair's other end is attached to.</summary>
    public string Bridge { get; set; } = "";

    /// <summary>With a network: the name of its veth pair's end on the host.</summary>
    public string HostLink { get; set; } = "";

    /// <summary>With a network: ports published to the host ([HOSTIP:]HOSTPORT:PORT[/tcp|/udp]).</summary>
    public List<string> Publish { get; set; } = [];

    /// <summary>With a mount namespace of its own: the bind mounts made in it (SRC:DST, GroupMounts).</summary>
    public List<string> Binds { get; set; } = [];

    /// <summary>The roots of the group's process trees: programs launched into it or attached to it.</summary>
    public List<int> Roots { get; set; } = [];

    /// <summary>Roots the coordinator launched (its children: it knows how they end).</summary>
    public List<int> Launched { get; set; } = [];

    public int Restarts { get; set; }

    public string LastCheckpoint { get; set; } = "";

    public long LastCheckpointUnixMs { get; set; }

    /// <summary>The processes the last checkpoint saved.</summary>
    public List<int> LastCheckpointPids { get; set; } = [];

    public long CreatedUnixMs { get; set; }

    /// <summary>The key file its checkpoints are encrypted with (amber run --encrypt); empty: in clear. Fixed when the group is made.</summary>
    public string EncryptKey { get; set; } = "";

    /// <summary>
    /// Coming from another node (a migration, amber receive) and not yet this node's: a coordinator
    /// that starts and finds a group so forgets it, with what it got of it (whatever brought it died
    /// with the coordinator before, and the source has the group).
    /// </summary>
    public bool Arriving { get; set; }

    /// <summary>
    /// A node's part of a group across nodes that came here from another node's copy when that node
    /// was lost (its name here is GROUP.NODE, or the one it had there): that group's name; empty for a
    /// group of this node's own making (a part whose name is the group's).
    /// </summary>
    public string PartOf { get; set; } = "";

    /// <summary>The group across nodes it is a part of (if it runs on several nodes): <see cref="PartOf"/>, or its own name.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public string Across => PartOf.Length > 0 ? PartOf : Name;
}
