using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using Amber.Kernel.Processes;
using Amber.Sockets;

namespace Amber.Coordinator.Control;

/// <summary>
/// The CLI's side of the control socket: one request, one response. The coordinator does the work
/// in processes of its own, so a CLI that dies (or is interrupted) mid-request never harms a group.
/// The socket is <see cref="AmberHome.Current"/>'s: /run/amber/amberd.sock, or AMBER_HOME/run/amberd.sock.
/// <code>
/// var answer = ControlClient.Send(new CheckpointRequest("web", Stop: false, Full: false));
/// if (!answer.Ok) Console.Error.WriteLine(answer.Error);
/// </code>
/// </summary>
public static class ControlClient
{
    private static readonly TimeSpan DaemonStart = TimeSpan.FromSeconds(20);

    /// <summary>Sends <paramref name="request"/> to the coordinator and returns its answer (which says whether the operation succeeded).</summary>
    /// <param name="request">The operation, one of the records of <c>Control/Requests</c>.</param>
    /// <param name="startDaemon">
    /// Start the coordinator if it is not running. It is started as this program run again with the
    /// argument <c>daemon</c>, so only the amber program itself may ask for it.
    /// </param>
    /// <param name="progress">Told how far the operation has come, a few times a second, until the answer (null: not asked for).</param>
    /// <exception cref="IOException">The coordinator is not running (and was not to be started), or closed the connection without answering.</exception>
    public static ControlResponse Send(Request request, bool startDaemon = false, Action<ProgressSample>? progress = null)
    {
        var home = AmberHome.Current;
        using var socket = Connect(home) ?? (startDaemon ? StartDaemon(home) : null)
            ?? throw new IOException($"the coordinator is not running (no {home.ControlSocket}); 'amber run' starts it");
        var wire = request.ToWire();
        wire.Progress = progress is not null;
        socket.Send(Encoding.UTF8.GetBytes(JsonSerializer.Serialize(wire, ControlJson.Default.ControlRequest) + "\n"));
        var reader = new LineReader(socket);
        while (true)
        {
            var line = reader.ReadLine() ?? throw new IOException("the coordinator closed the connection without answering (did it stop?)");
            var answer = JsonSerializer.Deserialize(line, ControlJson.Default.ControlResponse) ?? throw new IOException("the coordinator sent an empty answer");
            if (answer.Progress is null)
                return answer;
            progress?.Invoke(answer.Progress);
        }
    }

    private static Socket? Connect(AmberHome home)
    {
        if (!File.Exists(home.ControlSocket))
            return null;
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(home.ControlSocket));
            return socket;
        }
        catch (SocketException)
        {
            socket.Dispose();
            return null;
        }
    }

    /// <summary>Starts `amber daemon` in a session of its own, output to its log, and waits for its socket.</summary>
    private static Socket StartDaemon(AmberHome home)
    {
        Directory.CreateDirectory(home.StateDirectory);
        // The daemon's log is root's alone (see StateFiles).
        new FileStream(home.DaemonLog, new FileStreamOptions { Mode = FileMode.Append, Access = FileAccess.Write, UnixCreateMode = Security.StateFiles.Private }).Dispose();
        var (path, args) = SelfCommand.With("daemon");
        Spawner.Spawn(new SpawnOptions(path, args)
        {
            Opens = [(0, "/dev/null", SpawnOptions.Read), (1, home.DaemonLog, SpawnOptions.Append), (2, home.DaemonLog, SpawnOptions.Append)],
            NewSession = true,
        });
        var deadline = DateTime.UtcNow + DaemonStart;
        while (DateTime.UtcNow < deadline)
        {
            if (Connect(home) is { } socket)
                return socket;
            Thread.Sleep(20);
        }
        throw new IOException($"the coordinator did not start within {DaemonStart.TotalSeconds:0} s (see {home.DaemonLog})");
    }
}
