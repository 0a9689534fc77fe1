namespace Amber.Checkpoint.Restore;

/// <summary>What <see cref="Restorer.Restore"/> brings back, and how.</summary>
/// <param name="ImagesDirectory">A committed checkpoint.</param>
/// <param name="Detach">Return once the process runs (it is not amber's child) instead of waiting for it.</param>
/// <param name="InheritFds">External fds (pipes, terminals, sockets that came from outside) to connect to
/// fds of amber: (fd in the restored process, fd of amber). Others are reopened on /dev/null.</param>
/// <param name="PidWait">How long to wait for the saved PID to become free.</param>
public sealed record RestoreOptions(string ImagesDirectory, bool Detach, IReadOnlyList<(int Fd, int Source)> InheritFds, TimeSpan PidWait)
{
    /// <summary>
    /// How long a saved PID's holder that is not on its way out (no zombie, no SIGKILL pending) is waited
    /// for, if less than <see cref="PidWait"/>: a group's restore, whose own processes were all killed
    /// before, knows that such a holder is another program's and will not let go. Null: all of PidWait.
    /// </summary>
    public TimeSpan? PidWaitForOthers { get; init; }

    /// <summary>Called once every process is made, before any runs: from then on the terminal may be theirs (a progress display ends here).</summary>
    public Action? BeforeRelease { get; init; }

    /// <summary>The cgroup every restored process is born in (a group's).</summary>
    public Kernel.Processes.Cgroup? Cgroup { get; init; }

    /// <summary>Restore a checkpoint this host did not write (its manifest not signed with the host key): another machine's.</summary>
    public bool Trust { get; init; }

    /// <summary>Why a saved process may not be brought back (for whom the restore is done), or null; asked of every process before anything is made.</summary>
    public Func<Image.Schema.ProcessImage, string?>? Admit { get; init; }

    /// <summary>
    /// TCP connections come back closed (aborted: the program's next read or write fails with
    /// ECONNABORTED), for a restore whose peers are known to be gone (amber restore --tcp-close).
    /// </summary>
    public bool TcpClose { get; init; }

    /// <summary>
    /// Release the processes before their private memory is in: it is placed while they run, each page
    /// at once when touched (amber restore --lazy, <see cref="Resources.Memory.LazyPager"/>). The
    /// caller must keep running until <see cref="RestoreResult.Lazy"/> completes.
    /// </summary>
    public bool Lazy { get; init; }

    /// <summary>The key of an encrypted checkpoint (amber restore --key); another key, or none for an encrypted one, is refused before anything is made.</summary>
    public Image.ImageKey? Key { get; init; }
}
