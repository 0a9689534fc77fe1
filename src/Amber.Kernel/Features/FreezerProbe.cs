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

    /// <summary>The first cgroup2 mount point (fields are space-separated, spaces in paths escaped as \040).</summary>
    internal static string? FindCgroup2Mount()
    {
        foreach (var line in File.ReadLines("/proc/mounts"))
        {
            var fields = line.Split(' ');
            if (fields.Length >= 3 && fields[2] == "cgroup2")
                return Unescape(fields[1]);
        }
        return null;
    }

    // The kernel escapes these four characters in /proc/mounts as octal.
    private static string Unescape(string field) =>
        field.Replace("\\040", " ").Replace("\\011", "\t").Replace("\\012", "\n").Replace("\\134", "\\");
}
