using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Amber.Kernel.Files;
using Amber.Sockets;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Groups;

/// <summary>
/// A group's registration socket (run/groups/NAME.sock): programs of the group that use the client
/// library (Amber.Client) connect to it to be told "about to checkpoint" (with a deadline), "checkpoint
/// taken" and "restored", and to add processes to the group. Programs that never connect are
/// checkpointed all the same. One line per message:
/// <code>
///   program → coordinator: REGISTER name | ADD pid | UNREGISTER | READY id | FAILED callback id what
///   coordinator → program: OK | ERROR why | CHECKPOINT deadline-ms id | CHECKPOINTED id | RESTORED id
/// </code>
/// FAILED says a callback of the program's threw (BeforeCheckpoint comes before its READY): it is
/// logged, and the checkpoint's report names it; there is no veto, the checkpoint goes on.
/// A program's connection is part of what it is checkpointed with: at restore it connects again by
/// itself (the checkpoint saves it as "connect to this path again"), and the coordinator, knowing the
/// pids it restored, tells that connection RESTORED.
/// </summary>
public sealed class Registrations : IDisposable
{
    private readonly string _group;
    private readonly Socket _listener;
    private readonly Func<int, uint, string?> _attach;
    private readonly Func<int, bool> _isMember;
    private readonly ILogger _logger;
    private readonly object _lock = new();
    private readonly List<Session> _sessions = [];
    private readonly Dictionary<int, string> _restored = [];
    private volatile bool _disposed;

    /// <param name="attach">Adds a process tree to the group for a caller of that uid; null, or why not.</param>
    /// <param name="isMember">Whether a process is in the group.</param>
    /// <param name="logger">Registrations and callbacks that threw go to the daemon's log.</param>
    public Registrations(string group, string path, Func<int, uint, string?> attach, Func<int, bool> isMember, ILogger logger)
    {
        _group = group;
        _attach = attach;
        _isMember = isMember;
        _logger = logger;
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.Delete(path);
        _listener = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        _listener.Bind(new UnixDomainSocketEndPoint(path));
        File.SetUnixFileMode(path, FileModes.ReadWriteAll); // members of any uid connect; the coordinator checks who they are
        _listener.Listen(128);
        SocketPath = path;
        new Thread(Accept) { IsBackground = true, Name = $"amberd-register-{group}" }.Start();
    }

    public string SocketPath { get; }

    /// <summary>
    /// Tells every registered program a checkpoint is coming and waits for each to answer READY, but
    /// no longer than <paramref name="deadline"/>. Returns what the checkpoint's report says of them:
    /// those that did not answer in time, and those whose BeforeCheckpoint threw.
    /// </summary>
    public List<string> BeforeCheckpoint(string id, TimeSpan deadline)
    {
        List<Session> asked;
        lock (_lock)
        {
            asked = [.. _sessions.Where(s => s.Name is not null)];
            foreach (var s in asked)
            {
                s.ReadyFor = null;
                s.Failure = null;
            }
        }
        long ms = (long)deadline.TotalMilliseconds;
        foreach (var s in asked)
            s.Send($"CHECKPOINT {ms.ToString(CultureInfo.InvariantCulture)} {id}");
        var until = DateTime.UtcNow + deadline;
        while (DateTime.UtcNow < until && asked.Any(s => !s.Closed && s.ReadyFor != id))
            Thread.Sleep(2);
        return
        [
            .. asked.Where(s => s.Failure is { } f && f.StartsWith(id + " ", StringComparison.Ordinal))
                .Select(s => $"process {s.Pid} ('{s.Name}'): its {s.Failure![(id.Length + 1)..]}; checkpointed all the same"),
            .. asked.Where(s => !s.Closed && s.ReadyFor != id)
                .Select(s => $"process {s.Pid} ('{s.Name}') did not answer within {deadline.TotalSeconds.ToString("0.###", CultureInfo.InvariantCulture)} s; checkpointed all the same"),
        ];
    }

    public void AfterCheckpoint(string id)
    {
        lock (_lock)
        {
            foreach (var s in _sessions.Where(s => s.Name is not null))
                s.Send($"CHECKPOINTED {id}");
        }
    }

    /// <summary>
    /// The group was restored from <paramref name="id"/>: each restored process that had registered
    /// connects again by itself (now or in a moment); it is told RESTORED.
    /// </summary>
    public void AfterRestore(string id, IEnumerable<int> pids)
    {
        lock (_lock)
        {
            foreach (int pid in pids)
                _restored[pid] = id;
            foreach (var s in _sessions.Where(s => s.Name is null && _restored.ContainsKey(s.Pid)).ToList())
                Welcome(s);
        }
    }

    public void Dispose()
    {
        _disposed = true;
        _listener.Dispose();
        lock (_lock)
        {
            foreach (var s in _sessions)
                s.Socket.Dispose();
        }
        try { File.Delete(SocketPath); } catch (IOException) { }
    }

    private void Accept()
    {
        while (!_disposed)
        {
            Socket socket;
            try
            {
                socket = _listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                if (_disposed)
                    return;
                continue;
            }
            var peer = PeerCredentials.Of(socket);
            var session = new Session(socket, peer.Pid, peer.Uid);
            lock (_lock)
            {
                _sessions.Add(session);
                // A restored program's connection, made again by the restore: it says nothing first.
                if (_restored.ContainsKey(session.Pid))
                    Welcome(session);
            }
            new Thread(() => Serve(session)) { IsBackground = true, Name = $"amberd-client-{session.Pid}" }.Start();
        }
    }

    private void Welcome(Session s)
    {
        s.Name ??= $"process {s.Pid}";
        s.Send($"RESTORED {_restored[s.Pid]}");
        _restored.Remove(s.Pid);
    }

    private void Serve(Session session)
    {
        try
        {
            var reader = new LineReader(session.Socket);
            while (reader.ReadLine() is { } line)
            {
                var (verb, rest) = line.IndexOf(' ') is int space and > 0 ? (line[..space], line[(space + 1)..]) : (line, "");
                switch (verb)
                {
                    case "REGISTER":
                        if (!_isMember(session.Pid))
                        {
                            session.Send($"ERROR process {session.Pid} is not in group {_group} (start it with amber run, or amber attach it)");
                            break;
                        }
                        session.Name = rest.Length > 0 ? rest : $"process {session.Pid}";
                        _logger.Registered(_group, session.Pid, session.Name);
                        session.Send("OK");
                        break;
                    case "UNREGISTER":
                        session.Name = null;
                        session.Send("OK");
                        break;
                    case "READY":
                        session.ReadyFor = rest;
                        break;
                    case "FAILED":
                        Failed(session, rest);
                        break;
                    case "ADD":
                        if (!int.TryParse(rest, NumberStyles.None, CultureInfo.InvariantCulture, out int pid))
                        {
                            session.Send("ERROR ADD needs a pid");
                            break;
                        }
                        string? why = _isMember(session.Pid) ? _attach(pid, session.Uid) : $"process {session.Pid} is not in group {_group}";
                        session.Send(why is null ? "OK" : $"ERROR {why}");
                        break;
                    default:
                        session.Send($"ERROR unknown message '{verb}'");
                        break;
                }
            }
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException or IOException)
        {
        }
        finally
        {
            session.Closed = true;
            lock (_lock)
                _sessions.Remove(session);
            session.Socket.Dispose();
        }
    }

    /// <summary>A callback of the program's threw ("callback id what"): logged; a BeforeCheckpoint's goes into the checkpoint's report too.</summary>
    private void Failed(Session session, string report)
    {
        var parts = report.Split(' ', 3);
        if (parts.Length < 3)
            return;
        string who = session.Name is { } name ? $"process {session.Pid} ('{name}')" : $"process {session.Pid}";
        // A resource's callback is named Type.Callback.
        bool before = parts[0] == "BeforeCheckpoint" || parts[0].EndsWith(".BeforeCheckpoint", StringComparison.Ordinal);
        _logger.CallbackThrew(_group, who, parts[0], parts[1], parts[2], before ? "the checkpoint goes on" : "it runs on");
        if (before && session.Failure is null)
            session.Failure = $"{parts[1]} {parts[0]} threw {parts[2]}";
    }

    private sealed class Session(Socket socket, int pid, uint uid)
    {
        private readonly object _send = new();

        public Socket Socket { get; } = socket;

        public int Pid { get; } = pid;

        public uint Uid { get; } = uid;

        /// <summary>Set once the program registered (or came back restored): it is told about checkpoints.</summary>
        public string? Name { get; set; }

        public volatile string? ReadyFor;

        /// <summary>"id what": the BeforeCheckpoint for checkpoint id threw.</summary>
        public volatile string? Failure;

        public volatile bool Closed;

        public void Send(string line)
        {
            lock (_send)
            {
                try
                {
                    Socket.Send(Encoding.UTF8.GetBytes(line + "\n"));
                }
                catch (Exception e) when (e is SocketException or ObjectDisposedException)
                {
                    Closed = true;
                }
            }
        }
    }
}
