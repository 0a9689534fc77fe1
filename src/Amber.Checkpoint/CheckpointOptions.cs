namespace Amber.Checkpoint;

/// <summary>How <see cref="Checkpointer.Checkpoint"/> saves a tree: where, and what it does with it afterwards.</summary>
/// <param name="ImagesDirectory">Where the checkpoint is committed (must not exist, or be empty).</param>
/// <param name="LeaveRunning">Resume the process after the dump instead of ending it.</param>
public sealed record CheckpointOptions(string ImagesDirectory, bool LeaveRunning)
{
    /// <summary>
    /// Listening unix sockets outside the checkpoint (a group's registration socket) that a process's
    /// connection to is saved as "connect to this path again" instead of being refused.
    /// </summary>
    public IReadOnlySet<string> ReconnectTo { get; init; } = new HashSet<string>();

    /// <summary>
    /// Directories captured at the same barrier as the memory (a storage checkpoint), absolute; a
    /// restore rolls them back to this moment.
    /// </summary>
    public IReadOnlyList<string> Storage { get; init; } = [];

    /// <summary>Paths inside <see cref="Storage"/> neither captured nor rolled back (the coordinator's own state).</summary>
    public IReadOnlyList<string> StorageExcluded { get; init; } = [];

    /// <summary>
    /// An incremental checkpoint: the committed checkpoint (beside <see cref="ImagesDirectory"/>) to
    /// refer to for every page that did not change since.
    /// </summary>
    public string? Parent { get; init; }

    /// <summary>
    /// Write trackers kept since the parent checkpoint was taken (by pid: the userfaultfd and the
    /// ranges it tracks): pages they know unwritten are not even read.
    /// </summary>
    public IReadOnlyDictionary<int, (Kernel.Files.HeldFile Uffd, IReadOnlyList<(ulong Start, ulong End)> Ranges)> Trackers { get; init; } =
        new Dictionary<int, (Kernel.Files.HeldFile, IReadOnlyList<(ulong, ulong)>)>();

    /// <summary>
    /// With <see cref="LeaveRunning"/>: track writes from now on, for the next checkpoint
    /// (<see cref="CheckpointResult.Trackers"/>), where the kernel can (<see cref="Kernel.Memory.DirtyTracker.Works"/>).
    /// </summary>
    public bool Track { get; init; }

    /// <summary>
    /// Without <see cref="LeaveRunning"/>: asked once the checkpoint is whole, while the processes are
    /// still frozen, just before they are ended: null lets them end; otherwise they run on instead,
    /// and this says why (whoever asked for the checkpoint is gone; a migration that did not complete).
    /// It is given the checkpoint's directory as it is then: sealed, complete and readable, but not yet
    /// in place (<c>DIR.tmp-*</c>), and made durable meanwhile; it is committed after the answer and
    /// before any process ends, so that what a hand-over sends is never held up by the disk.
    /// </summary>
    public Func<string, string?>? BeforeEnd { get; init; }

    /// <summary>
    /// With <see cref="LeaveRunning"/>: asked once everything has been read out of the frozen processes
    /// (memory, files, connections locked), before they run again: null lets them run on and the
    /// checkpoint be written; otherwise it is abandoned (nothing is kept, they run on) and this says
    /// why. A group across nodes holds every node's part here until every node has read its own, so
    /// that none runs again before all are at the same cut.
    /// </summary>
    public Func<string?>? AtBarrier { get; init; }

    /// <summary>
    /// With <see cref="AtBarrier"/>: asked once everything before the freeze is done (the copies made
    /// while the processes run), just before it: null freezes them now; otherwise nothing is frozen and
    /// this says why. A group across nodes freezes every node's part at the leader's one word.
    /// </summary>
    public Func<string?>? BeforeFreeze { get; init; }

    /// <summary>
    /// Page data through the page cache, not with direct I/O: for a checkpoint read again at once (a
    /// migration's last round, which a hand-over sends), whose writing then costs a copy into memory
    /// under the freeze instead of the disk's time.
    /// </summary>
    public bool PagesThroughCache { get; init; }

    /// <summary>
    /// Without <see cref="LeaveRunning"/>, once they are to end: called as soon as every process has been
    /// sent SIGKILL (none of them runs another instruction), before they are collected — a migration's
    /// destination may release its copy from then on.
    /// </summary>
    public Action? Ending { get; init; }

    /// <summary>Compression of the process memory stored (none, zstd, lz4); what an incremental checkpoint keeps of its parent stays as it is.</summary>
    public Amber.Image.Schema.Codec Compression { get; init; }

    /// <summary>
    /// Encrypt the checkpoint with this key (amber checkpoint --encrypt); null: in clear. An
    /// incremental checkpoint must have its parent's key (or none if the parent has none).
    /// </summary>
    public Amber.Image.ImageKey? Key { get; init; }
}
