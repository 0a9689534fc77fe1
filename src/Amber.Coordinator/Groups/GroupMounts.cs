using Amber.Checkpoint.Restore;
using Amber.Kernel.Files;

namespace Amber.Coordinator.Groups;

/// <summary>
/// A group's mount namespace of its own (<c>--isolate mount</c>): a private copy of the host's tree, a
/// tmpfs of its own on /tmp, the bind mounts <c>--bind SRC:DST</c> asks for, and with a PID namespace
/// of its own a procfs of it on /proc. The exec helper makes them for the first program, which is born
/// in the namespace; a checkpoint saves them like any mount namespace's (tmpfs contents included), and a
/// restore makes them again.
/// </summary>
public static class GroupMounts
{
    /// <summary>The options of the group's /tmp: anyone may make files there, and remove only theirs (sticky), as on the host.</summary>
    public const string TmpOptions = "mode=1777";

    /// <summary>Why <paramref name="spec"/> cannot be a --bind (SRC:DST, two absolute canonical paths), or null.</summary>
    public static string? BindProblem(string spec)
    {
        string[] parts = spec.Split(':');
        if (parts.Length != 2)
            return $"--bind {spec}: not SRC:DST (two full paths, neither with a ':')";
        foreach (var (path, what) in new[] { (parts[0], "source"), (parts[1], "mount point") })
        {
            if (ImageValidator.CanonicalPathProblem(path) is { } problem)
                return $"--bind {spec}: the {what} '{path}' {problem}";
            if (path.Any(char.IsControl))
                return $"--bind {spec}: the {what} has a control character";
        }
        if (parts[1] == "/" || parts[1] == "/proc" || parts[1].StartsWith("/proc/", StringComparison.Ordinal))
            return $"--bind {spec}: {parts[1]} cannot be a mount point of a group's";
        return null;
    }

    /// <summary>
    /// Why the binds cannot be made on this host, or null: checked by the coordinator (root) before the
    /// group is made. A source must exist; a mount point must exist and be of the source's kind (a
    /// directory or not), unless it is in the group's /tmp, where the helper makes it; neither may go
    /// through a symbolic link (a mount follows it: the group would get another place than the one named).
    /// </summary>
    public static string? HostProblem(IEnumerable<string> binds)
    {
        foreach (string spec in binds)
        {
            var (source, target) = Split(spec);
            if (LinkOnTheWay(source) is { } sourceLink)
                return $"--bind {spec}: {sourceLink} is a symbolic link; name the place it leads to";
            if (!FileStat.TryGetNoFollow(source, out var from))
                return $"--bind {spec}: the source {source} does not exist";
            if (InPrivateTmp(target))
                continue;
            if (LinkOnTheWay(target) is { } targetLink)
                return $"--bind {spec}: {targetLink} is a symbolic link; name the place it leads to";
            if (!FileStat.TryGetNoFollow(target, out var to))
                return $"--bind {spec}: the mount point {target} does not exist (outside /tmp it must, as for mount --bind)";
            if (from.IsDirectory != to.IsDirectory)
                return $"--bind {spec}: {source} is {(from.IsDirectory ? "a directory" : "not a directory")} and {target} is {(to.IsDirectory ? "one" : "not")}";
        }
        return null;
    }

    /// <summary>
    /// Why the group's log (its programs' standard output, opened before they enter the namespace) would
    /// not be the same file at the same path in its namespace, or null: one under /tmp is in the host's
    /// /tmp, which the group's own covers, unless a bind shows it again.
    /// </summary>
    public static string? LogProblem(string log, IEnumerable<string> binds) =>
        InPrivateTmp(log) && !binds.Select(Split).Any(b => b.Source == b.Target && (log.StartsWith(b.Target + "/", StringComparison.Ordinal)))
            ? $"the group's log {log} is under /tmp, which a group with --isolate mount has of its own: set AMBER_HOME outside /tmp, or --bind its directory on itself"
            : null;

    /// <summary>
    /// In the calling thread's new mount namespace (<see cref="Kernel.Processes.Namespaces.Make"/>): the
    /// group's /tmp, its binds in order, and its procfs when <paramref name="proc"/> (the caller is PID 1
    /// of the group's PID namespace).
    /// </summary>
    public static void Make(bool privateTmp, IReadOnlyList<string> binds, bool proc)
    {
        // Each source held before /tmp is covered: one under the host's /tmp is still bound from there.
        var sources = new List<(HeldFile Source, bool Directory, string Target)>();
        try
        {
            foreach (string spec in binds)
            {
                var (source, target) = Split(spec);
                sources.Add((HeldFile.Open(source, OpenFlags.Path | OpenFlags.CloseOnExec, 0), Directory.Exists(source), target));
            }
            if (privateTmp)
                Mounts.Tmpfs("/tmp", TmpOptions);
            foreach (var (source, directory, target) in sources)
            {
                if (privateTmp && InPrivateTmp(target) && !Path.Exists(target))
                    MakeMountPoint(target, directory);
                Mounts.Bind($"/proc/thread-self/fd/{source.Fd}", target);
            }
        }
        finally
        {
            sources.ForEach(s => s.Source.Dispose());
        }
        if (proc)
            Mounts.Proc("/proc");
    }

    private static (string Source, string Target) Split(string spec) => spec.IndexOf(':') is int colon and > 0
        ? (spec[..colon], spec[(colon + 1)..])
        : throw new ArgumentException($"--bind {spec} is not SRC:DST", nameof(spec));

    private static bool InPrivateTmp(string path) => path.StartsWith("/tmp/", StringComparison.Ordinal);

    /// <summary>A mount point in the group's own /tmp, made as root, 0755 (or an empty file, 0644), with its parents.</summary>
    private static void MakeMountPoint(string target, bool directory)
    {
        if (directory)
        {
            Directory.CreateDirectory(target, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute | UnixFileMode.GroupRead
                | UnixFileMode.GroupExecute | UnixFileMode.OtherRead | UnixFileMode.OtherExecute);
            return;
        }
        Directory.CreateDirectory(Path.GetDirectoryName(target)!);
        using var file = new FileStream(target, new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write,
            UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead });
    }

    /// <summary>The first component of <paramref name="path"/> that is a symbolic link, or null.</summary>
    private static string? LinkOnTheWay(string path)
    {
        string at = "";
        foreach (string part in path[1..].Split('/'))
        {
            at += "/" + part;
            if (!FileStat.TryGetNoFollow(at, out var st))
                return null;
            if (st.IsSymlink)
                return at;
        }
        return null;
    }
}
