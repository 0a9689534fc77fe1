using System.Text.Json.Serialization;
using Amber.Coordinator.Groups;

namespace Amber.Transport.Peers;

/// <summary>
/// One message between two node agents: a JSON object whose Op says what it is. The image stream
/// (<see cref="Amber.Image.CheckpointStreamWriter"/>) follows a "checkpoints" message on the same
/// connection, raw.
/// </summary>
internal sealed class PeerMessage
{
    /// <summary>
    /// hello, begin, checkpoints, restore, commit, abort, pages, checkpoint-part, restore-part, go, run, replica (asked); ok, prepared, released, running,
    /// held, done, error (answered); busy (said, not answered).
    /// </summary>
    public string Op { get; set; } = "";

    /// <summary>hello: the protocol version the sender speaks.</summary>
    public int Version { get; set; }

    /// <summary>error, abort: what went wrong, one line.</summary>
    public string Error { get; set; } = "";

    /// <summary>begin: the group that is to move, its settings as its node keeps them; replica: the group whose copy it is.</summary>
    public GroupConfig? Group { get; set; }

    /// <summary>begin: how it moves (precopy, postcopy, stop); checkpoint-part: "full" for a full checkpoint.</summary>
    public string Mode { get; set; } = "";

    /// <summary>begin, replica: an encrypted group's key (its 32 bytes), which the destination keeps for its checkpoints there.</summary>
    public byte[]? Key { get; set; }

    /// <summary>begin: the token its storage directories are marked with, declared shared (<see cref="Migration.SharedStorage"/>); empty: none.</summary>
    public string Probe { get; set; } = "";

    /// <summary>ok after a begin with a probe: the receiving node has the very same storage directories, so it is not sent.</summary>
    public bool Shared { get; set; }

    /// <summary>pages: the group whose migration the connection brings the pages of; checkpoint-part, restore-part: the group whose members here it is about.</summary>
    public string Name { get; set; } = "";

    /// <summary>restore, restore-part: the checkpoint to restore; ok after checkpoints: those received; done: the part's checkpoint.</summary>
    public List<string> Checkpoints { get; set; } = [];

    /// <summary>ok after checkpoints: the bytes received; done: the part's bytes.</summary>
    public long Bytes { get; set; }

    /// <summary>running: the restored roots.</summary>
    public List<int> Roots { get; set; } = [];

    /// <summary>done: the processes the part saved.</summary>
    public List<int> Processes { get; set; } = [];

    /// <summary>running: how long the restore took on that node, in ms; done: how long the part's processes were frozen.</summary>
    public double Ms { get; set; }

    /// <summary>running, error: warnings of the receiving node's operation; ok after a begin with a probe that did not match: why not.</summary>
    public List<string> Warnings { get; set; } = [];

    /// <summary>run: the control request to handle (its JSON), for <see cref="For"/>; ok after it: the answer (its JSON).</summary>
    public string Request { get; set; } = "";

    /// <summary>run: whom it is for, on the asking node (uid, groups, capabilities: <see cref="Amber.Coordinator.Security.Requester.ToArgument"/>).</summary>
    public string For { get; set; } = "";

    /// <summary>checkpoint-part: the node to send the part's copy to once it is committed, and its agent's ADDR:PORT ("": none).</summary>
    public string CopyTo { get; set; } = "";

    public string CopyAddress { get; set; } = "";

    /// <summary>done: when the part's freeze began (Unix ms, that node's clock).</summary>
    public double FrozenAtUnixMs { get; set; }

    /// <summary>done: the nodes that hold a copy of the part.</summary>
    public List<string> Copies { get; set; } = [];

    /// <summary>restore-part: the node whose part it is, lost, which the receiving node restores from its copy ("": the receiving node's own part).</summary>
    public string Origin { get; set; } = "";

    /// <summary>recover: the failing part's group on the asking node.</summary>
    public string Part { get; set; } = "";

    /// <summary>restore-part with an origin: the part's group on that node, whose copy it is (<see cref="Cluster.Replicas"/>).</summary>
    public string OriginGroup { get; set; } = "";

    /// <summary>restore-part: the group across nodes the part is of.</summary>
    public string Across { get; set; } = "";

    /// <summary>restore-part: members of the part that run are ended first (the whole group goes back to the checkpoint).</summary>
    public bool Replace { get; set; }

    /// <summary>checkpoint-part: the part's members end once the leader says "go" at the barrier (amber checkpoint --stop), instead of running on.</summary>
    public bool Stop { get; set; }

    /// <summary>recover: when the part failed (Unix ms, the asking node's clock): a restore of the group done since covers it.</summary>
    public long FailedAtUnixMs { get; set; }

    /// <summary>ok after store: when the answering node last renewed its lease in the cluster's store (Unix ms, its clock; 0: it is not registered).</summary>
    public long RenewedAtUnixMs { get; set; }

    public static PeerMessage Of(string op) => new() { Op = op };

    public static PeerMessage Failure(string error) => new() { Op = Ops.Error, Error = error.ReplaceLineEndings(" ") };
}

/// <summary>The ops of <see cref="PeerMessage"/>.</summary>
internal static class Ops
{
    public const string Hello = "hello";
    public const string Begin = "begin";
    public const string Checkpoints = "checkpoints";
    public const string Restore = "restore";
    public const string Commit = "commit";
    public const string Abort = "abort";
    public const string Pages = "pages";
    public const string Ok = "ok";
    public const string Prepared = "prepared";
    public const string Released = "released";
    public const string Running = "running";
    public const string Error = "error";
    /// <summary>Checkpoint the group's members on this node, at the barrier of a checkpoint across nodes (the leader's).</summary>
    public const string CheckpointPart = "checkpoint-part";
    /// <summary>Restore the group's members on this node from its part of a checkpoint across nodes, held at the barrier until all are made.</summary>
    public const string RestorePart = "restore-part";
    /// <summary>Keep a copy of the asking node's part of a group's checkpoints across nodes (its checkpoints follow).</summary>
    public const string Replica = "replica";
    /// <summary>Run a program as a member of a group on this node (amber run --node), for a user of the asking node.</summary>
    public const string Run = "run";
    /// <summary>The part is at its barrier (a checkpoint's processes frozen and read out, a restore's made), and waits for the leader's word.</summary>
    public const string Held = "held";
    /// <summary>Every part is held: let the processes run on and write the checkpoint.</summary>
    public const string Go = "go";
    /// <summary>The part's checkpoint is committed.</summary>
    public const string Done = "done";
    /// <summary>The source is at work (a checkpoint being taken) and is not dead: nothing to answer.</summary>
    public const string Busy = "busy";

    /// <summary>Asked of a group's leader by a node whose part of it failed (restart on failure): the whole group restored from its latest checkpoint across nodes.</summary>
    public const string Recover = "recover";

    /// <summary>Asked by a node cut off from the cluster's store: does the asked one reach it?</summary>
    public const string Store = "store";
}

[JsonSourceGenerationOptions(DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingDefault)]
[JsonSerializable(typeof(PeerMessage))]
internal sealed partial class PeerJson : JsonSerializerContext;
