using System.Net;
using Microsoft.AspNetCore.Connections;

namespace Amber.Client.AspNetCore;

/// <summary>
/// One of Kestrel's listeners, unbound before each checkpoint and bound again to the same endpoint
/// after it and after a restore. Kestrel's accept loop never sees the gap: <see cref="AcceptAsync"/>
/// waits through it, and ends (null) only when Kestrel itself unbinds. Connections waiting in the
/// kernel's accept queue when it unbinds are reset (the socket transport does not hand them out);
/// their clients connect again. One that cannot bind again is reported to the coordinator and waits,
/// never failing Kestrel's accept loop (which would end for good): the next checkpoint tries again.
/// </summary>
internal sealed class ReopenedConnectionListener : IConnectionListener, ICheckpointResource
{
    private readonly GroupClient _amber;
    private readonly IConnectionListenerFactory _sockets;
    private readonly object _gate = new();
    private IConnectionListener? _current;
    private TaskCompletionSource _reopened = NewSignal();
    private bool _unbound;

    public ReopenedConnectionListener(GroupClient amber, IConnectionListenerFactory sockets, IConnectionListener listener)
    {
        _amber = amber;
        _sockets = sockets;
        _current = listener;
        // Port 0 became a port: the same one every time.
        EndPoint = listener.EndPoint;
    }

    public EndPoint EndPoint { get; }

    public async ValueTask<ConnectionContext?> AcceptAsync(CancellationToken cancellationToken = default)
    {
        while (true)
        {
            IConnectionListener? current;
            Task reopened;
            lock (_gate)
            {
                if (_unbound)
                    return null;
                current = _current;
                reopened = _reopened.Task;
            }
            if (current is null)
            {
                await reopened.WaitAsync(cancellationToken).ConfigureAwait(false);
                continue;
            }
            ConnectionContext? connection;
            try
            {
                connection = await current.AcceptAsync(cancellationToken).ConfigureAwait(false);
            }
            catch (Exception) when (IsClosedForCheckpoint(current))
            {
                continue;
            }
            if (connection is not null)
                return connection;
            // The socket transport ends its accepts with null once unbound: by Kestrel, or by us for a checkpoint.
        }
    }

    public void BeforeCheckpoint(CheckpointNotice notice)
    {
        IConnectionListener? current;
        lock (_gate)
        {
            current = _current;
            _current = null;
        }
        if (current is null)
            return;
        current.UnbindAsync().AsTask().GetAwaiter().GetResult();
        current.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }

    public void AfterCheckpoint(string id) => Reopen();

    public void AfterRestore(string id) => Reopen();

    public async ValueTask UnbindAsync(CancellationToken cancellationToken = default)
    {
        IConnectionListener? current;
        lock (_gate)
        {
            _unbound = true;
            current = _current;
            _reopened.TrySetResult();
        }
        if (current is not null)
            await current.UnbindAsync(cancellationToken).ConfigureAwait(false);
    }

    public async ValueTask DisposeAsync()
    {
        _amber.Remove(this);
        IConnectionListener? current;
        lock (_gate)
        {
            _unbound = true;
            current = _current;
            _current = null;
            _reopened.TrySetResult();
        }
        if (current is not null)
            await current.DisposeAsync().ConfigureAwait(false);
    }

    private void Reopen()
    {
        lock (_gate)
        {
            if (_unbound || _current is not null)
                return;
        }
        IConnectionListener? listener = null;
        Exception? failed = null;
        try
        {
            listener = _sockets.BindAsync(EndPoint).AsTask().GetAwaiter().GetResult();
        }
        catch (Exception e)
        {
            failed = e;
        }
        lock (_gate)
        {
            if (listener is not null && _unbound)
            {
                // Kestrel stopped meanwhile: nobody accepts on it.
                listener.DisposeAsync().AsTask().GetAwaiter().GetResult();
                return;
            }
            _current = listener;
            var signal = _reopened;
            _reopened = NewSignal();
            signal.TrySetResult();
        }
        if (failed is not null)
            throw new IOException($"could not listen on {EndPoint} again after a checkpoint: {failed.Message}", failed); // reported to the coordinator
    }

    private bool IsClosedForCheckpoint(IConnectionListener listener)
    {
        lock (_gate)
            return !ReferenceEquals(_current, listener);
    }

    private static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
