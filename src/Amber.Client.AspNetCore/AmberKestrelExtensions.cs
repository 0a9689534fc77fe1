using Microsoft.AspNetCore.Connections;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Server.Kestrel.Transport.Sockets;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace Amber.Client.AspNetCore;

/// <summary>Kestrel with Amber: its listeners closed for each checkpoint and listening again after.</summary>
public static class AmberKestrelExtensions
{
    /// <summary>
    /// Kestrel's listening sockets become resources of <paramref name="amber"/>: closed before each
    /// checkpoint of the group (the image holds no listener), bound again to the same endpoints after
    /// it and after a restore. Connections already accepted are not touched.
    /// <code>
    /// using var amber = GroupClient.Register("web");
    /// var builder = WebApplication.CreateBuilder(args);
    /// builder.WebHost.UseAmberListeners(amber);
    /// </code>
    /// </summary>
    public static IWebHostBuilder UseAmberListeners(this IWebHostBuilder builder, GroupClient amber)
    {
        ArgumentNullException.ThrowIfNull(builder);
        ArgumentNullException.ThrowIfNull(amber);
        // Kestrel uses the transport registered last: this one, over its own socket transport.
        return builder.ConfigureServices(services => services.AddSingleton<IConnectionListenerFactory>(provider => new ReopenedListenerFactory(amber,
            new SocketTransportFactory(provider.GetService<IOptions<SocketTransportOptions>>() ?? Options.Create(new SocketTransportOptions()),
                provider.GetRequiredService<ILoggerFactory>()))));
    }
}
