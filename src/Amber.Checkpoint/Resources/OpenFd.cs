using Amber.Kernel.Files;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources;

/// <summary>An fd of a stopped process as a checkpoint first sees it: what /proc says it is, before any kind claims it.</summary>
/// <param name="Link">Its /proc/PID/fd link: a path, or "pipe:[N]", "socket:[N]", "anon_inode:[eventfd]"...</param>
/// <param name="Stat">What the fd's file is (stat through the link).</param>
/// <param name="Info">Its /proc/PID/fdinfo: flags, position, locks.</param>
public sealed record OpenFd(int Pid, int Fd, string Link, FileStat Stat, FdInfo Info)
{
    /// <summary>A socket's options and state, when read ahead with the process's other sockets (<see cref="FdTable"/>).</summary>
    public SocketState? Socket { get; init; }

    private const string AnonPrefix = "anon_inode:";

    /// <summary>How errors name it: "fd 5 (/tmp/x)".</summary>
    public string What => $"fd {Fd} ({Link})";

    /// <summary>The kind of an anonymous-inode file ("eventfd", "timerfd", "eventpoll"...), null for any other file.</summary>
    public string? AnonKind => Link.StartsWith(AnonPrefix, StringComparison.Ordinal) ? Link[AnonPrefix.Length..].Trim('[', ']') : null;

    /// <summary>The access mode of the open file is write-only (a pipe's or FIFO's write end).</summary>
    public bool WriteOnly => (Info.Flags & OpenFlags.AccessMode) == OpenFlags.WriteOnly;

    /// <summary>A path that names a file that still has it (not a pipe, socket or anonymous file, not deleted).</summary>
    public bool IsNamedPath => Link.StartsWith('/') && !IsDeletedPath;

    /// <summary>A path the kernel marks deleted: the file has no name any more.</summary>
    public bool IsDeletedPath => Link.StartsWith('/') && Link.EndsWith(DeletedSuffix, StringComparison.Ordinal);

    public const string DeletedSuffix = " (deleted)";
}
