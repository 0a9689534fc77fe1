using System.Globalization;
using System.Net.Sockets;
using System.Text;
using Amber.Sockets;

namespace Amber.Client;

/// <summary>A checkpoint about to be taken: its id, and the moment the coordinator stops waiting.</summary>
public sealed record CheckpointNotice(string Id, DateTimeOffset Deadline)
{
    /// <summary>Time left to prepare (flush, close what cannot be saved, quiesce).</summary>
    public TimeSpan Remaining => Deadline - DateTimeOffset.UtcNow;
}

/// <summary>
/// A program's link to its Amber application group, like CRaC's resource API for Java: it may be
/// told before each checkpoint (to prepare, within a deadline) and after it, and after the group is
/// restored — and add processes to its group. Programs that never use it are checkpointed all the
/// same; this is only for those that want to take part.
/// <code>
/// using var amber = GroupClient.Register("my-service");
/// amber.BeforeCheckpoint = notice => FlushCaches(notice.Remaining);
/// amber.AfterRestore = id => Reconnect();
/// </code>
/// Callbacks run on the client's own thread, one at a time, in the order the coordinator sends them.
/// A callback that throws never ends the program: the exception is caught and reported to the
/// coordinator, whose log (and, for BeforeCheckpoint, the checkpoint's report) names it.
/// The group is found through AMBER_GROUP and AMBER_REGISTRATION, which `amber run` sets.
/// </summary>
public sealed class GroupClient : IDisposable
{
    private readonly Socket _socket;
    private readonly Thread _reader;
    private readonly object _send = new();
    private readonly Queue<string> _replies = new();
    private readonly List<ICheckpointResource> _resources = [];
    private volatile bool _disposed;

    private GroupClient(Socket socket, string group)
    {
        _socket = socket;
        Group = group;
        _reader = new Thread(Read) { IsBackground = true, Name = "amber-client" };
    }

    /// <summary>The group this program belongs to.</summary>
    public string Group { get; }

    /// <summary>
    /// Called before a checkpoint; return before the deadline: the checkpoint does not wait longer.
    /// It cannot veto the checkpoint: one that throws is reported (the coordinator's log and the
    /// checkpoint's report name the exception) and the checkpoint is taken all the same.
    /// </summary>
    public Action<CheckpointNotice>? BeforeCheckpoint { get; set; }

    /// <summary>Called once the checkpoint is taken, in the program that runs on. An exception it throws is reported to the coordinator.</summary>
    public Action<string>? AfterCheckpoint { get; set; }

    /// <summary>Called in the restored program: the group came back from checkpoint id. An exception it throws is reported to the coordinator.</summary>
    public Action<string>? AfterRestore { get; set; }

    /// <summary>
    /// Registers this process with its group's coordinator under <paramref name="name"/>.
    /// </summary>
    /// <exception cref="InvalidOperationException">Not started in an Amber group (no AMBER_REGISTRATION), or the coordinator refused.</exception>
    public static GroupClient Register(string name, string? registrationSocket = null)
    {
        string path = registrationSocket ?? Environment.GetEnvironmentVariable("AMBER_REGISTRATION")
            ?? throw new InvalidOperationException("not in an Amber group: AMBER_REGISTRATION is not set (start the program with amber run)");
        string group = Environment.GetEnvironmentVariable("AMBER_GROUP") ?? Path.GetFileNameWithoutExtension(path);
        var socket = new Socket(AddressFamily.Unix, SocketType.Stream, ProtocolType.Unspecified);
        try
        {
            socket.Connect(new UnixDomainSocketEndPoint(path));
        }
        catch (SocketException e)
        {
            socket.Dispose();
            throw new InvalidOperationException($"cannot reach the coordinator of group {group} at {path}: {e.Message}", e);
        }
        var client = new GroupClient(socket, group);
        client._reader.Start();
        client.Request($"REGISTER {name.Replace('\n', ' ')}");
        return client;
    }

    /// <summary>
    /// Adds a resource to be closed before each checkpoint and opened again after it and after a
    /// restore (<see cref="ReopenedListener"/>, <see cref="ReopenedFile"/>, or one of the program's own).
    /// Resources are told after <see cref="BeforeCheckpoint"/> and before <see cref="AfterCheckpoint"/>
    /// and <see cref="AfterRestore"/>: the program's callbacks see them open.
    /// </summary>
    public T Add<T>(T resource) where T : ICheckpointResource
    {
        ArgumentNullException.ThrowIfNull(resource);
        lock (_resources)
            _resources.Add(resource);
        return resource;
    }

    /// <summary>Takes a resource out: no longer closed and opened around checkpoints.</summary>
    public bool Remove(ICheckpointResource resource)
    {
        lock (_resources)
            return _resources.Remove(resource);
    }

    /// <summary>Adds another process tree (one this program started, say) to the group.</summary>
    public void AddProcess(int pid) => Request($"ADD {pid.ToString(CultureInfo.InvariantCulture)}");

    /// <summary>No more notices; the process stays in the group and is still checkpointed.</summary>
    public void Unregister() => Request("UNREGISTER");

    /// <summary>Closes the connection to the coordinator: no more notices (the process stays in the group).</summary>
    public void Dispose()
    {
        _disposed = true;
        _socket.Dispose();
    }

    private void Request(string line)
    {
        lock (_replies)
        {
            Send(line);
            var deadline = DateTime.UtcNow.AddSeconds(30);
            while (_replies.Count == 0)
            {
                if (_disposed || !_reader.IsAlive)
                    throw new InvalidOperationException($"the coordinator of group {Group} closed the connection");
                if (!Monitor.Wait(_replies, TimeSpan.FromMilliseconds(100)) && DateTime.UtcNow > deadline)
                    throw new InvalidOperationException($"the coordinator of group {Group} did not answer '{line}'");
            }
            string reply = _replies.Dequeue();
            if (reply.StartsWith("ERROR", StringComparison.Ordinal))
                throw new InvalidOperationException(reply.Length > 6 ? reply[6..] : reply);
        }
    }

    private void Send(string line)
    {
        lock (_send)
            _socket.Send(Encoding.UTF8.GetBytes(line + "\n"));
    }

    /// <summary>
    /// The client's thread: answers and notices, one line each. After a restore this thread carries
    /// on from where it was, on a connection the restore made again: the next line is RESTORED.
    /// </summary>
    private void Read()
    {
        var reader = new LineReader(_socket);
        try
        {
            while (!_disposed && reader.ReadLine() is { } line)
                Dispatch(line);
        }
        catch (Exception e) when (e is SocketException or ObjectDisposedException)
        {
        }
        catch (Exception)
        {
            // Callbacks cannot throw here (Invoke catches); whatever else fails ends the link, never the program.
        }
        finally
        {
            lock (_replies)
                Monitor.PulseAll(_replies);
        }
    }

    private void Dispatch(string line)
    {
        var parts = line.Split(' ', 3);
        switch (parts[0])
        {
            case "CHECKPOINT" when parts.Length == 3 && long.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out long ms):
                var notice = new CheckpointNotice(parts[2], DateTimeOffset.UtcNow.AddMilliseconds(ms));
                Invoke(nameof(BeforeCheckpoint), notice.Id, () => BeforeCheckpoint?.Invoke(notice));
                foreach (var resource in Resources(reversed: true))
                    Invoke($"{resource.GetType().Name}.{nameof(BeforeCheckpoint)}", notice.Id, () => resource.BeforeCheckpoint(notice));
                Send($"READY {notice.Id}");
                break;
            case "CHECKPOINTED" when parts.Length >= 2:
                foreach (var resource in Resources(reversed: false))
                    Invoke($"{resource.GetType().Name}.{nameof(AfterCheckpoint)}", parts[1], () => resource.AfterCheckpoint(parts[1]));
                Invoke(nameof(AfterCheckpoint), parts[1], () => AfterCheckpoint?.Invoke(parts[1]));
                break;
            case "RESTORED" when parts.Length >= 2:
                foreach (var resource in Resources(reversed: false))
                    Invoke($"{resource.GetType().Name}.{nameof(AfterRestore)}", parts[1], () => resource.AfterRestore(parts[1]));
                Invoke(nameof(AfterRestore), parts[1], () => AfterRestore?.Invoke(parts[1]));
                break;
            default:
                lock (_replies)
                {
                    _replies.Enqueue(line);
                    Monitor.PulseAll(_replies);
                }
                break;
        }
    }

    private List<ICheckpointResource> Resources(bool reversed)
    {
        lock (_resources)
        {
            var copy = new List<ICheckpointResource>(_resources);
            if (reversed)
                copy.Reverse();
            return copy;
        }
    }

    /// <summary>Runs a callback of the program's; if it throws, tells the coordinator (FAILED callback id what), which logs it.</summary>
    private void Invoke(string callback, string id, Action call)
    {
        try
        {
            call();
        }
        catch (Exception e)
        {
            Send($"FAILED {callback} {id} {e.GetType().Name}: {e.Message.ReplaceLineEndings(" ")}");
        }
    }
}
