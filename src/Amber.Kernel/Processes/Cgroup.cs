using System.Diagnostics;
using System.Globalization;
using Amber.Kernel.Features;

namespace Amber.Kernel.Processes;

/// <summary>
/// A cgroup v2 directory: which processes are in it, moving processes into it, and its freezer,
/// which stops every task in it at once (cgroup.freeze) — the group barrier — and lets them go.
/// </summary>
public sealed class Cgroup
{
    private Cgroup(string path) => Path = path;

    public string Path { get; }

    /// <summary>Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems).</summary>
    public static string Hierarchy =>
        FreezerProbe.FindCgroup2Mount() ?? throw new IOException("no cgroup2 file system is mounted (see /proc/mounts)");

    /// <summary>The cgroup at <paramref name="relative"/> below the hierarchy's root, made if missing.</summary>
    public static Cgroup Create(string relative)
    {
        var path = System.IO.Path.Combine(Hierarchy, relative);
        Directory.CreateDirectory(path);
        return new Cgroup(path);
    }

    /// <summary>An existing cgroup by its full path (under the hierarchy).</summary>
    public static Cgroup At(string path)
    {
        string hierarchy = Hierarchy;
        var full = System.IO.Path.GetFullPath(path);
        if (!full.StartsWith(hierarchy + "/", StringComparison.Ordinal) && full != hierarchy)
            throw new IOException($"{path} is not a cgroup (not under {hierarchy})");
        if (!Directory.Exists(full))
            throw new IOException($"cgroup {full} does not exist");
        return new Cgroup(full);
    }

    public static Cgroup? Open(string relative)
    {
        var path = System.IO.Path.Combine(Hierarchy, relative);
        return Directory.Exists(path) ? new Cgroup(path) : null;
    }

    /// <summary>The processes in the cgroup now (not in its children).</summary>
    public List<int> Processes() =>
        [.. File.ReadAllLines(System.IO.Path.Combine(Path, "cgroup.procs")).Where(l => l.Length > 0).Select(l => int.Parse(l, CultureInfo.InvariantCulture))];

    /// <summary>Moves a process (all its threads) into the cgroup; what it forks from then on is born in it.</summary>
    public void Add(int pid)
    {
        try
        {
            File.WriteAllText(System.IO.Path.Combine(Path, "cgroup.procs"), pid.ToString(CultureInfo.InvariantCulture));
        }
        catch (IOException) when (!Proc.ProcFs.Exists(pid))
        {
            throw new TargetGoneException(pid);
        }
    }

    public bool Frozen => Event("frozen") == "1";

    public bool Populated => Event("populated") == "1";

    /// <summary>Stops every task of the cgroup; returns once the kernel reports them all frozen (the barrier time).</summary>
    public TimeSpan Freeze(TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        File.WriteAllText(System.IO.Path.Combine(Path, "cgroup.freeze"), "1");
        while (!Frozen)
        {
            if (clock.Elapsed > timeout)
            {
                Thaw();
                throw new IOException($"cgroup {Path} did not freeze within {timeout.TotalSeconds:0.#} s");
            }
            Thread.Sleep(TimeSpan.FromTicks(2000)); // 0.2 ms: freezing takes about a millisecond
        }
        return clock.Elapsed;
    }

    public void Thaw() => File.WriteAllText(System.IO.Path.Combine(Path, "cgroup.freeze"), "0");

    /// <summary>Removes the (empty) cgroup; false if processes are still in it.</summary>
    public bool TryRemove()
    {
        try
        {
            Directory.Delete(Path);
            return true;
        }
        catch (IOException)
        {
            return false;
        }
    }

    private string? Event(string name)
    {
        foreach (var line in File.ReadLines(System.IO.Path.Combine(Path, "cgroup.events")))
        {
            if (line.StartsWith(name + " ", StringComparison.Ordinal))
                return line[(name.Length + 1)..].Trim();
        }
        return null;
    }
}
