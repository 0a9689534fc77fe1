using Amber.Checkpoint.Resources.Sockets;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>What the network lock holds, seen from a test: the connections of a server's port.</summary>
public static class NetworkLocks
{
    /// <summary>The locks holding a connection to or from <paramref name="port"/>.</summary>
    public static List<NetworkLock> Of(int port) =>
        [.. NetworkLock.All().Where(l => l.ListeningPorts.Contains(port) || l.Connections.Any(c => c.Local.Port == port || c.Peer.Port == port))];

    public static string Describe(IEnumerable<NetworkLock> locks) =>
        string.Join("; ", locks.Select(l => $"{l.Id} held by {l.HeldBy} for {l.Checkpoint}: {string.Join(", ", l.Connections)}")) is { Length: > 0 } d ? d : "none";

    /// <summary>The connections to or from <paramref name="port"/> that some lock holds now.</summary>
    public static List<ConnectionEnds> Holding(int port) =>
        [.. NetworkLock.All().SelectMany(l => l.Connections).Where(c => c.Local.Port == port || c.Peer.Port == port)];

    /// <summary>
    /// While a checkpointed server is gone: its connections on <paramref name="port"/> are held by a
    /// lock parked for <paramref name="images"/>, at least <paramref name="atLeast"/> of them.
    /// </summary>
    public static void AssertParked(int port, string images, int atLeast)
    {
        var locks = NetworkLock.All();
        int parked = locks.Where(l => l.Checkpoint == images).SelectMany(l => l.Connections).Count(c => c.Local.Port == port);
        Assert.True(parked >= atLeast,
            $"{parked} connection(s) of port {port} parked for {images}, expected at least {atLeast}; locks: "
            + Describe(locks));
    }

    /// <summary>After the restore: nothing of <paramref name="port"/> is locked any more.</summary>
    public static void AssertNoneHeld(int port)
    {
        var held = Holding(port);
        Assert.True(held.Count == 0, $"still locked after the restore: {string.Join(", ", held)}");
    }
}
