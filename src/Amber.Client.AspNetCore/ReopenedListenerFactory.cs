using System.Net;
using Microsoft.AspNetCore.Connections;

namespace Amber.Client.AspNetCore;

/// <summary>Binds through Kestrel's socket transport, each listener a resource of the group (<see cref="ReopenedConnectionListener"/>).</summary>
internal sealed class ReopenedListenerFactory(GroupClient amber, IConnectionListenerFactory sockets) : IConnectionListenerFactory
{
    public async ValueTask<IConnectionListener> BindAsync(EndPoint endpoint, CancellationToken cancellationToken = default)
    {
        var listener = await sockets.BindAsync(endpoint, cancellationToken).ConfigureAwait(false);
        return amber.Add(new ReopenedConnectionListener(amber, sockets, listener));
    }
}
