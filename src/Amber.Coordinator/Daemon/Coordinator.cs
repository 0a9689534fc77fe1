using System.Globalization;
using System.Runtime.InteropServices;
using System.Text.Json;
using Amber.Coordinator.Daemon.Handlers;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Monitoring;
using Amber.Coordinator.Security;
using Amber.Kernel.Files;
using Amber.Kernel.Processes;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Daemon;

/// <summary>
/// The coordinator daemon (amber daemon): owns every group of its home. It answers requests on its
/// control socket (<see cref="ControlServer"/>: only from root and a group's owner, told apart by
/// peer credentials, each done by its operation's handler), and its monitor watches the groups
/// (<see cref="GroupMonitor"/>: reaping, restarts, scheduled checkpoints and merges). Checkpoints and
/// restores run in worker processes, never in the daemon itself.
/// </summary>
public sealed class Coordinator : IDisposable
{
    private readonly AmberHome _home = AmberHome.Current;
    private readonly GroupSet _groups = new();
    private readonly ChildReaper _reaper = new();
    private readonly CancellationTokenSource _stop = new();
    private readonly ILoggerFactory _loggers = DaemonLogging.Create();
    private readonly ILogger _logger;
    private ControlServer? _server;
    private ExclusiveLock? _pidLock;
    private CoordinatorMetrics? _metrics;

    private readonly INodeAgent? _agent;

    /// <param name="agent">Makes it a node agent (amber agent): a listener for the cluster's other nodes, and migrations; null: this node only.</param>
    public Coordinator(INodeAgent? agent = null)
    {
        _logger = _loggers.CreateLogger<Coordinator>();
        _agent = agent;
    }

    /// <summary>Runs until asked to shut down (amber daemon --stop, SIGTERM).</summary>
    public int Run()
    {
        StateFiles.Directory(_home.RunDirectory, StateFiles.Open);
        StateFiles.Directory(Path.Combine(_home.RunDirectory, "groups"), StateFiles.Open);
        StateFiles.Directory(_home.StateDirectory, StateFiles.Reachable);
        StateFiles.Directory(_home.GroupsDirectory, StateFiles.Reachable);
        if (File.Exists(_home.DaemonLog))
            File.SetUnixFileMode(_home.DaemonLog, StateFiles.Private);
        // Before anything is taken: a configuration that cannot be stops the coordinator, naming what.
        var defaults = CoordinatorConfig.Load();
        _pidLock = TakeLock();
        Spawner.BecomeSubreaper();
        _logger.Configured(defaults.ToString());
        _metrics = new CoordinatorMetrics(_groups);
        if (defaults.MetricsAddress is { } metricsAddress)
        {
            try
            {
                _metrics.Serve(metricsAddress);
            }
            catch (System.Net.HttpListenerException e)
            {
                throw new IOException($"cannot serve metrics at {metricsAddress} (metricsAddress of {defaults.Path}): {e.Message}", e);
            }
            _logger.ServingMetrics($"http://{metricsAddress}/metrics");
        }
        var handlers = OperationHandlers.Create(_home, _reaper, _groups, _stop, _loggers, defaults, _metrics, _agent);
        LoadGroups(handlers);
        var services = new NodeServices(_home, _groups, handlers, _loggers);
        foreach (var arriving in _groups.All().Where(g => g.Config.Arriving).ToList())
        {
            // Its migration (or amber receive) died with the coordinator before: the source has it.
            _logger.ArrivalAbandoned(arriving.Config.Name);
            foreach (string left in services.Forget(arriving))
                _logger.MonitorProblem(arriving.Config.Name, left);
        }
        var dispatcher = new RequestDispatcher(_groups, handlers, _agent, new GroupStreams(services));
        services.Requests = (request, who) => dispatcher.Handle(request, who);
        _agent?.Start(services);
        _server = new ControlServer(_home.ControlSocket, dispatcher, _stop.Token, _loggers.CreateLogger<ControlServer>());
        _server.Start();
        _logger.Listening(Environment.ProcessId, _home.ControlSocket);
        // Before READY: a SIGTERM sent as soon as systemd (or anyone) hears it must find the handler
        // that stops the coordinator in order, not the runtime's default exit.
        using var term = PosixSignalRegistration.Create(PosixSignal.SIGTERM, c =>
        {
            c.Cancel = true;
            _stop.Cancel();
        });
        // Run by systemd (Type=notify): ready once requests can be taken.
        if (SystemdNotify.Send($"READY=1\nMAINPID={Environment.ProcessId}\nSTATUS=listening on {_home.ControlSocket}") is { } problem)
            _logger.NotNotified(problem);
        var monitor = new GroupMonitor(_groups, _reaper, new GroupOperations(handlers, _metrics, _agent), _loggers.CreateLogger<GroupMonitor>());
        while (!_stop.IsCancellationRequested)
        {
            monitor.Check();
            _stop.Token.WaitHandle.WaitOne(GroupMonitor.Tick);
        }
        _logger.Stopping();
        SystemdNotify.Send("STOPPING=1");
        return 0;
    }

    public void Dispose()
    {
        _server?.Dispose();
        _agent?.Dispose();
        _metrics?.Dispose();
        foreach (var group in _groups.All())
            group.Dispose();
        if (_pidLock is not null)
        {
            RemovePidFile();
            _pidLock.Dispose();
        }
        _stop.Dispose();
        _loggers.Dispose(); // last: writes out what is still queued
    }

    /// <summary>The groups of this home, found again from their group.json (a coordinator restarted), and what interrupted workers left in their stores.</summary>
    private void LoadGroups(OperationHandlers handlers)
    {
        foreach (var config in Directory.GetFiles(_home.GroupsDirectory, "group.json", SearchOption.AllDirectories))
        {
            try
            {
                var group = GroupRuntime.Load(_home, config, handlers.Attach.ForRegistration, _loggers.CreateLogger<Registrations>());
                _groups.Add(group);
                _logger.FoundAgain(group.Config.Name, group.LiveProcesses().Count, group.Config.LastCheckpoint.Length > 0 ? group.Config.LastCheckpoint : "none");
                handlers.Approval.RemoveLeftovers(group);
            }
            catch (Exception e) when (e is IOException or JsonException or UnauthorizedAccessException)
            {
                _logger.Skipping(config, e.Message);
            }
        }
    }

    private string PidFile => Path.Combine(_home.RunDirectory, "amberd.pid");

    /// <summary>One coordinator per home: a second one fails here instead of fighting the first.</summary>
    private ExclusiveLock TakeLock()
    {
        var held = ExclusiveLock.TryTake(Path.Combine(_home.RunDirectory, "amberd.lock"))
            ?? throw new IOException($"another coordinator runs for {_home.RunDirectory}");
        File.WriteAllText(PidFile, $"{Environment.ProcessId}\n");
        return held;
    }

    /// <summary>Removes the pid file on the way out, still holding the lock: only if it names us (nobody else wrote it since).</summary>
    private void RemovePidFile()
    {
        try
        {
            if (File.ReadAllText(PidFile).Trim() == Environment.ProcessId.ToString(CultureInfo.InvariantCulture))
                File.Delete(PidFile);
        }
        catch (IOException)
        {
            // Already gone: nothing to remove.
        }
    }
}
