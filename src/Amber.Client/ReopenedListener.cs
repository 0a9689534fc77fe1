using System.Net;
using System.Net.Sockets;

namespace Amber.Client;

/// <summary>
/// A listening TCP socket closed before each checkpoint and listening again, on the same address and
/// port, after it and after a restore: so a checkpoint holds no listener (a warm-start image restored
/// where the port is taken, or beside a copy of itself, binds it again only when told) and nothing
/// connects while the program is saved. Connections already waiting to be accepted when it closes
/// are accepted first and handed out by <see cref="Accept"/> afterwards: none is reset.
/// <code>
/// var listener = amber.Add(new ReopenedListener(new IPEndPoint(IPAddress.Loopback, 8080)));
/// while (true) Serve(listener.Accept()); // waits through a checkpoint
/// </code>
/// </summary>
public sealed class ReopenedListener : ICheckpointResource, IDisposable
{
    private readonly int _backlog;
    private readonly object _gate = new();
    private readonly Queue<Socket> _taken = new();
    private Socket? _socket;
    private bool _disposed;
    private Exception? _reopenFailed;

    /// <summary>Listens on <paramref name="endpoint"/> now (port 0: one the kernel picks, kept for every reopening).</summary>
    public ReopenedListener(IPEndPoint endpoint, int backlog = 512)
    {
        ArgumentNullException.ThrowIfNull(endpoint);
        _backlog = backlog;
        _socket = Listen(endpoint);
        LocalEndPoint = (IPEndPoint)_socket.LocalEndPoint!;
    }

    /// <summary>The address and port it listens on, the same after every reopening.</summary>
    public IPEndPoint LocalEndPoint { get; }

    /// <summary>Whether it listens now (false from a checkpoint's notice until it is taken or restored).</summary>
    public bool IsListening
    {
        get
        {
            lock (_gate)
                return _socket is not null;
        }
    }

    /// <summary>The next connection; while it is closed for a checkpoint, waits until it listens again.</summary>
    /// <exception cref="ObjectDisposedException">It was disposed.</exception>
    /// <exception cref="IOException">It could not listen again after a checkpoint (the port is taken...), until the next checkpoint reopens it.</exception>
    public Socket Accept()
    {
        while (true)
        {
            Socket listener;
            lock (_gate)
            {
                while (_socket is null && _taken.Count == 0 && !_disposed && _reopenFailed is null)
                    Monitor.Wait(_gate);
                if (_taken.Count > 0)
                    return _taken.Dequeue();
                ObjectDisposedException.ThrowIf(_disposed, this);
                listener = _socket ?? throw new IOException($"could not listen on {LocalEndPoint} again after a checkpoint: {_reopenFailed!.Message}", _reopenFailed);
            }
            try
            {
                return listener.Accept();
            }
            catch (Exception e) when (e is SocketException or ObjectDisposedException)
            {
                lock (_gate)
                {
                    // Closed under it for a checkpoint (or disposed): wait for the next one. Otherwise a real failure.
                    if (ReferenceEquals(_socket, listener) && !_disposed)
                        throw;
                }
            }
        }
    }

    /// <inheritdoc/>
    public void BeforeCheckpoint(CheckpointNotice notice) => Close();

    /// <inheritdoc/>
    public void AfterCheckpoint(string id) => Reopen();

    /// <inheritdoc/>
    public void AfterRestore(string id) => Reopen();

    /// <summary>Stops listening for good; connections accepted but not yet handed out are closed.</summary>
    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed)
                return;
            _disposed = true;
            while (_taken.Count > 0)
                _taken.Dequeue().Dispose();
            Monitor.PulseAll(_gate);
        }
        Close();
    }

    private void Close()
    {
        Socket? listener;
        lock (_gate)
        {
            listener = _socket;
            _socket = null;
        }
        if (listener is null)
            return;
        // What waits in the accept queue would be reset by the close: take it first.
        listener.Blocking = false;
        var waiting = new List<Socket>();
        while (true)
        {
            try
            {
                waiting.Add(listener.Accept());
            }
            catch (SocketException)
            {
                break; // EAGAIN: the queue is empty (or an acceptor thread took the rest)
            }
        }
        // Wakes an acceptor blocked in accept(2): it finds the socket gone and waits for the next one.
        try
        {
            listener.Shutdown(SocketShutdown.Both);
        }
        catch (SocketException)
        {
        }
        listener.Dispose();
        lock (_gate)
        {
            foreach (var connection in waiting)
            {
                connection.Blocking = true;
                if (_disposed)
                    connection.Dispose();
                else
                    _taken.Enqueue(connection);
            }
            Monitor.PulseAll(_gate);
        }
    }

    private void Reopen()
    {
        lock (_gate)
        {
            if (_disposed || _socket is not null)
                return;
            try
            {
                _socket = Listen(LocalEndPoint);
                _reopenFailed = null;
            }
            catch (SocketException e)
            {
                // Reported to the coordinator by the client; acceptors are told (and the next checkpoint tries again).
                _reopenFailed = e;
                throw;
            }
            finally
            {
                Monitor.PulseAll(_gate);
            }
        }
    }

    private Socket Listen(IPEndPoint endpoint)
    {
        var socket = new Socket(endpoint.AddressFamily, SocketType.Stream, ProtocolType.Tcp);
        try
        {
            // Its earlier connections may linger in TIME_WAIT on the port: bind it again all the same.
            socket.SetSocketOption(SocketOptionLevel.Socket, SocketOptionName.ReuseAddress, true);
            socket.Bind(endpoint);
            socket.Listen(_backlog);
            return socket;
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }
}
