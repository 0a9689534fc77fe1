using System.IO.Hashing;
using System.Text;

namespace Amber.Coordinator;

/// <summary>
/// Where the coordinator and its groups live. By default the system places: the control and
/// registration sockets in /run/amber, process tables in /dev/shm (amber.GROUP.table), group
/// configuration, stores and logs in /var/lib/amber, cgroups under amber/ in the cgroup v2
/// hierarchy. AMBER_HOME=DIR moves all of it under DIR (run/, shm/, state/) with cgroups of their
/// own, so several coordinators (tests) never meet.
/// </summary>
public sealed class AmberHome
{
    private AmberHome(string? home)
    {
        Home = home;
        RunDirectory = home is null ? "/run/amber" : Path.Combine(home, "run");
        ShmDirectory = home is null ? "/dev/shm" : Path.Combine(home, "shm");
        StateDirectory = home is null ? "/var/lib/amber" : Path.Combine(home, "state");
        CgroupPrefix = home is null ? "amber" : $"amber-{Convert.ToHexStringLower(XxHash3.Hash(Encoding.UTF8.GetBytes(home)))[..12]}";
    }

    public static AmberHome Current { get; } = For(Environment.GetEnvironmentVariable("AMBER_HOME") is { Length: > 0 } h ? h : null);

    /// <summary>The places of the home at <paramref name="home"/> (null: the system's).</summary>
    public static AmberHome For(string? home) => new(home is null ? null : Path.GetFullPath(home));

    public string? Home { get; }

    public string RunDirectory { get; }

    public string ShmDirectory { get; }

    public string StateDirectory { get; }

    /// <summary>The directory of this home's group cgroups, relative to the cgroup v2 root.</summary>
    public string CgroupPrefix { get; }

    public string ControlSocket => Path.Combine(RunDirectory, "amberd.sock");

    public string DaemonLog => Path.Combine(StateDirectory, "amberd.log");

    public string GroupsDirectory => Path.Combine(StateDirectory, "groups");

    public string GroupDirectory(string group) => Path.Combine(GroupsDirectory, group);

    public string GroupConfig(string group) => Path.Combine(GroupDirectory(group), "group.json");

    public string DefaultStore(string group) => Path.Combine(GroupDirectory(group), "images");

    public string GroupLog(string group) => Path.Combine(GroupDirectory(group), "output.log");

    /// <summary>Held by each worker of the group (checkpoint, restore, merge) for its whole life.</summary>
    public string WorkerLock(string group) => Path.Combine(GroupDirectory(group), "worker.lock");

    public string ProcessTable(string group) => Path.Combine(ShmDirectory, $"amber.{group}.table");

    public string RegistrationSocket(string group) => Path.Combine(RunDirectory, "groups", $"{group}.sock");

    public string Cgroup(string group) => $"{CgroupPrefix}/{group}";

    /// <summary>What <see cref="IsValidGroupName"/> allows, said to a user.</summary>
    public const string GroupNameRule = "letters, digits, '-', '_', '.', not starting with '.'; at most 63";

    /// <summary>A group name is a file name and a cgroup name: letters, digits, '-', '_', '.', at most 63.</summary>
    public static bool IsValidGroupName(string name) =>
        name.Length is > 0 and <= 63 && name[0] != '.' && name.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');
}
