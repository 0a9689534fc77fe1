using System.Globalization;
using Amber.Coordinator;
using Amber.Coordinator.Table;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>
/// A coordinator home of the test's own (AMBER_HOME in a test directory: its own sockets, tables,
/// stores and cgroups). Disposing stops its groups and its coordinator, and removes its cgroups.
/// The coordinator, started by the first `amber run`, ends up a child of the test process (a subreaper).
/// </summary>
public sealed class GroupHome : IDisposable
{
    private readonly TestDir _dir;

    public GroupHome(string name)
    {
        _dir = new TestDir(name);
        Home = AmberHome.For(_dir["home"]);
    }

    public AmberHome Home { get; }

    public TestDir Dir => _dir;

    public IReadOnlyDictionary<string, string> Environment => new Dictionary<string, string> { ["AMBER_HOME"] = Home.Home! };

    public AmberRun Amber(params string[] args) => AmberCli.Run(args, null, Environment);

    public RunningAmber StartAmber(params string[] args) => AmberCli.Start(args, null, Environment);

    /// <summary>
    /// Starts this home's coordinator with extra environment (AMBER_FAULT, say) and waits until it
    /// listens (long enough for ./amber to build itself first, when a source changed).
    /// </summary>
    public RunningAmber StartDaemon(IReadOnlyDictionary<string, string>? extra = null)
    {
        var environment = new Dictionary<string, string>(Environment);
        foreach (var (key, value) in extra ?? new Dictionary<string, string>())
            environment[key] = value;
        var daemon = AmberCli.Start(["daemon"], null, environment);
        WaitUntil(() => File.Exists(Home.ControlSocket) && DaemonPid == daemon.Pid, "the coordinator to listen", TimeSpan.FromMinutes(3));
        return daemon;
    }

    /// <summary>amber run --group GROUP [options] -- COMMAND: the program's PID.</summary>
    public int Run(string group, string[] options, params string[] command)
    {
        var run = Amber(["run", "--group", group, .. options, "--", .. command]).ShouldSucceed();
        return int.Parse(run.LastStdoutLine, CultureInfo.InvariantCulture);
    }

    /// <summary>amber run --group GROUP [options] -- COMMAND from <paramref name="directory"/>, where the program starts: its PID.</summary>
    public int RunIn(string directory, string group, string[] options, params string[] command)
    {
        var run = AmberCli.Run(["run", "--group", group, .. options, "--", .. command], env: Environment, workingDirectory: directory).ShouldSucceed();
        return int.Parse(run.LastStdoutLine, CultureInfo.InvariantCulture);
    }

    /// <summary>The coordinator's PID, from its lock file (0 if none ever ran).</summary>
    public int DaemonPid
    {
        get
        {
            var path = Path.Combine(Home.RunDirectory, "amberd.pid");
            return File.Exists(path) && int.TryParse(File.ReadAllText(path).Trim(), out int pid) ? pid : 0;
        }
    }

    public (TableHeader Header, List<ProcessRecord> Records) Table(string group)
    {
        using var table = ProcessTable.OpenForReading(Home.ProcessTable(group)) ?? throw new InvalidOperationException($"no table for group {group}");
        return table.Read();
    }

    /// <summary>The processes in the group's cgroup now.</summary>
    public List<int> Members(string group) => Cgroup.Open(Home.Cgroup(group))?.Processes() ?? [];

    /// <summary>
    /// Waits until <paramref name="condition"/> holds, failing with <paramref name="what"/> after the
    /// timeout, and what <paramref name="context"/> then says (logs that tell why).
    /// </summary>
    public static void WaitUntil(Func<bool> condition, string what, TimeSpan? timeout = null, Func<string>? context = null)
    {
        var deadline = DateTime.UtcNow + (timeout ?? TimeSpan.FromSeconds(30));
        while (!condition())
        {
            if (DateTime.UtcNow >= deadline)
                Assert.Fail($"timed out waiting for {what}{context?.Invoke()}");
            Thread.Sleep(20);
        }
    }

    public void Dispose()
    {
        // Never throws: a failing test must report its own failure, not the clean-up's.
        try
        {
            int daemon = DaemonPid;
            if (Directory.Exists(Home.GroupsDirectory) && daemon > 0 && ProcFs.Exists(daemon))
            {
                foreach (var group in Directory.GetDirectories(Home.GroupsDirectory).Select(Path.GetFileName))
                    Amber("stop", "--group", group!, "--remove");
                Amber("daemon", "--stop");
            }
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (daemon > 0 && ProcFs.Exists(daemon) && !Spawner.TryReap(daemon, out _) && DateTime.UtcNow < deadline)
                Thread.Sleep(10);
            if (daemon > 0 && ProcFs.Exists(daemon))
            {
                Spawner.Kill(daemon, 9);
                Spawner.TryReap(daemon, out _);
            }
            var root = Cgroup.Open(Home.CgroupPrefix);
            if (root is not null)
            {
                foreach (var dir in Directory.GetDirectories(root.Path))
                {
                    // Left over only if the coordinator could not stop them: they are orphans of this process now.
                    var group = Cgroup.At(dir);
                    var left = group.Processes();
                    foreach (int pid in left)
                        Spawner.Kill(pid, 9);
                    var until = DateTime.UtcNow.AddSeconds(5);
                    while (group.Populated && DateTime.UtcNow < until)
                        Thread.Sleep(5);
                    foreach (int pid in left)
                        Spawner.TryReap(pid, out _);
                }
                // A cgroup goes once its last task has fully exited, a moment after it was killed.
                var removeBy = DateTime.UtcNow.AddSeconds(5);
                while (!(Directory.GetDirectories(root.Path).All(d => Cgroup.At(d).TryRemove()) && root.TryRemove()) && DateTime.UtcNow < removeBy)
                    Thread.Sleep(10);
            }
        }
        catch (Exception)
        {
        }
        _dir.Dispose();
    }
}
