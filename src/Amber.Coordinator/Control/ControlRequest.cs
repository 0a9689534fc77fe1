namespace Amber.Coordinator.Control;

/// <summary>
/// A request as it travels on the control socket: one JSON line, every field of every operation,
/// Op saying which (see <see cref="Request"/> for the typed requests). Its shape is the wire format the
/// CLI and the coordinator agree on: fields are only ever added.
/// </summary>
public sealed class ControlRequest
{
    /// <summary>run, attach, detach, checkpoint, restore, images, merge, verify, stop, remove, shutdown.</summary>
    public string Op { get; set; } = "";

    /// <summary>The group the request is about (all but shutdown).</summary>
    public string Group { get; set; } = "";

    /// <summary>run: the program and its arguments.</summary>
    public List<string> Command { get; set; } = [];

    /// <summary>run: the directory the program starts in.</summary>
    public string WorkingDirectory { get; set; } = "";

    /// <summary>run: the program's environment, as NAME=value.</summary>
    public List<string> Environment { get; set; } = [];

    /// <summary>run: where the group's checkpoints go; empty: the default store.</summary>
    public string Store { get; set; } = "";

    /// <summary>run: a checkpoint every so many seconds; 0: on demand only.</summary>
    public double EverySeconds { get; set; }

    /// <summary>run: directories captured with each checkpoint and rolled back by a restore.</summary>
    public List<string> Storage { get; set; } = [];

    /// <summary>run: the storage is on a file system the nodes share; null: not said (a new group: no; an existing one: as it is). Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public bool? SharedStorage { get; set; }

    /// <summary>run: restore the group when a member fails; null: not said (a new group: off; an existing one: as it is).</summary>
    public bool? RestartOnFailure { get; set; }

    /// <summary>run: a group across nodes, when a node is lost: "rollback" or "lost-only"; null: not said. Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? NodeLoss { get; set; }

    /// <summary>run: how long registered programs get to prepare for a checkpoint; 0: the default (5 s).</summary>
    public double DeadlineSeconds { get; set; }

    /// <summary>attach, detach: the root of the process tree.</summary>
    public int Pid { get; set; }

    /// <summary>checkpoint: end the processes once saved instead of letting them run on.</summary>
    public bool Stop { get; set; }

    /// <summary>checkpoint: a full checkpoint, not an incremental one after the latest.</summary>
    public bool Full { get; set; }

    /// <summary>restore: the checkpoint to restore (default: the latest); merge: the checkpoint to fold (default: the latest).</summary>
    public string From { get; set; } = "";

    /// <summary>run: fold a group's chain into a full checkpoint once it is this long (0: the default, 8).</summary>
    public int MergeAfter { get; set; }

    /// <summary>run: fold it also once its incremental checkpoints hold more than this many bytes (0: no limit).</summary>
    public long MergeAboveBytes { get; set; }

    /// <summary>run: retention, the latest checkpoints kept (0: not said). Left off the wire when 0, as a request without it was.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public int KeepLast { get; set; }

    /// <summary>run: retention, the seconds of checkpoints kept (0: not said). Left off the wire when 0.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public double KeepForSeconds { get; set; }

    /// <summary>run: compression of the group's checkpoints (none, zstd, lz4; empty: not said, none for a new group).</summary>
    public string Compress { get; set; } = "";

    /// <summary>run: the key file a new group's checkpoints are encrypted with (a full path; null: not said, in clear). Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Encrypt { get; set; }

    /// <summary>
    /// Any operation: send progress lines (<see cref="ControlResponse.Progress"/>) before the answer, for
    /// a progress bar. Left off the wire when false: a coordinator that does not know it answers as before.
    /// </summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public bool Progress { get; set; }

    /// <summary>run: the namespaces a new group has of its own (pid, uts, ipc, net, mount); null: not said (none). Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public List<string>? Isolate { get; set; }

    /// <summary>run: the host name of a new group's own UTS namespace; null: the group's name. Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Hostname { get; set; }

    /// <summary>run: a new group's network ("bridge": an address of its own); null: none. Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Net { get; set; }

    /// <summary>run: a new group's address and prefix length; null: the pool's next. Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Address { get; set; }

    /// <summary>run: a new group's default route (--net macvlan:IF); null: none. Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Gateway { get; set; }

    /// <summary>run: the ports a new group publishes to the host; null: none. Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public List<string>? Publish { get; set; }

    /// <summary>migrate: the destination node agent's ADDR:PORT. Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? To { get; set; }

    /// <summary>migrate: precopy, postcopy, stop. Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Mode { get; set; }

    /// <summary>migrate: the longest the group may be frozen for its last round, in ms. Left off the wire when 0.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public double MaxDowntimeMs { get; set; }

    /// <summary>migrate: what a pre-copy whose rounds do not shrink does, stop or abort. Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? OnNoConvergence { get; set; }

    /// <summary>migrate --to-file, receive: the requester's fd the group's stream goes to or comes from. Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public int? Fd { get; set; }

    /// <summary>receive: restore the group once it is in. Left off the wire when false.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingDefault)]
    public bool Restore { get; set; }

    /// <summary>run: the bind mounts of a new group's own mount namespace (SRC:DST); null: none. Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public List<string>? Bind { get; set; }

    /// <summary>run: the node of the cluster to run the program on (its agent asked by this node's); null: this node. Left off the wire when null.</summary>
    [System.Text.Json.Serialization.JsonIgnore(Condition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull)]
    public string? Node { get; set; }
}
