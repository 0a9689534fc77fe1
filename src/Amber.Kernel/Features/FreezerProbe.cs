namespace Amber.Kernel.Features;

/// <summary>The cgroup v2 freezer a group checkpoint stops its members with.</summary>
internal static class FreezerProbe
{
    /// <summary>Makes and removes an empty child cgroup: only non-root cgroups have cgroup.freeze.</summary>
    public static (bool Present, string Detail) CgroupFreeze()
    {
        string? root = FindCgroup2Mount();
        if (root is null)
            return (false, "no cgroup2 file system in /proc/mounts");
        if (!File.Exists(Path.Combine(root, "cgroup.procs")))
            return (false, $"{root} has no cgroup.procs");
        string child = Path.Combine(root, $"amber-check-{Environment.ProcessId}");
        Directory.CreateDirectory(child);
        try
        {
            return File.Exists(Path.Combine(child, "cgroup.freeze"))
                ? (true, $"cgroup2 at {root}")
                : (false, $"a cgroup under {root} has no cgroup.freeze (kernel older than 5.2?)");
        }
        finally
        {
            Directory.Delete(child);
        }
    }

    /// <summary>
    /// The cgroup2 mount point that can be seen (fields are space-separated, spaces in paths escaped as
    /// \040): the last one that no later mount covers. A mount namespace that mounted sysfs and cgroup2
    /// again (a container, a node of a test) still lists the mounts it was copied with, hidden under
    /// its own: a path of those would be a directory of the new hierarchy.
    /// </summary>
    internal static string? FindCgroup2Mount()
    {
        var mounts = File.ReadLines("/proc/mounts").Select(l => l.Split(' ')).Where(f => f.Length >= 3).Select(f => (Point: Unescape(f[1]), Type: f[2])).ToList();
        for (int i = mounts.Count - 1; i >= 0; i--)
        {
            if (mounts[i].Type != "cgroup2")
                continue;
            string point = mounts[i].Point;
            bool covered = mounts.Skip(i + 1).Any(m => m.Point == point || point.StartsWith(m.Point.TrimEnd('/') + "/", StringComparison.Ordinal));
            if (!covered)
                return point;
        }
        return null;
    }

    // The kernel escapes these four characters in /proc/mounts as octal.
    private static string Unescape(string field) =>
        field.Replace("\\040", " ").Replace("\\011", "\t").Replace("\\012", "\n").Replace("\\134", "\\");
}
