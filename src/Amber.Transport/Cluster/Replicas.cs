using Amber.Coordinator;
using Amber.Coordinator.Daemon;
using Amber.Coordinator.Store;
using Amber.Image;
using Amber.Transport.Peers;

namespace Amber.Transport.Cluster;

/// <summary>
/// Copies of a node's part of a group's checkpoints across nodes, kept by another node of the group
/// so that the part outlives its node: <c>STATE/replicas/GROUP/NODE/</c>, a store of NODE's
/// checkpoints of GROUP (each signed by this host's key as it arrives, made durable before it is
/// committed). A part is sent to its node's "buddy" (the next node of the checkpoint, by name, round
/// the ring) once it is committed: only what the copy does not have yet (an incremental checkpoint
/// and whatever earlier ones it needs), over the agents' TLS, as a migration sends a checkpoint. The
/// copy keeps the chain of the latest checkpoint it got, and nothing older.
/// </summary>
internal static class Replicas
{
    /// <summary>Where this node keeps its copies of <paramref name="node"/>'s checkpoints of <paramref name="group"/>.</summary>
    public static string Directory(AmberHome home, string group, string node) => Path.Combine(home.StateDirectory, "replicas", group, node);

    /// <summary>
    /// Sends checkpoint <paramref name="id"/> of <paramref name="store"/> (this node's part of
    /// <paramref name="group"/>) to <paramref name="buddy"/>'s copy, and what it needs that the copy
    /// lacks: null once the copy has it, or why not.
    /// </summary>
    public static string? Send(GroupStore store, string group, string id, NodeRecord buddy, NodeIdentity identity, TimeSpan timeout)
    {
        if (!System.Net.IPEndPoint.TryParse(buddy.Address, out var address))
            return $"node {buddy.Name}'s address '{buddy.Address}' in the cluster's store is not ADDR:PORT";
        try
        {
            using var link = PeerLink.Connect(address, identity, timeout);
            link.Greet();
            link.Send(new PeerMessage { Op = Ops.Replica, Name = group });
            var has = link.Expect(Ops.Ok).Checkpoints.ToHashSet(StringComparer.Ordinal);
            var chain = store.Chain(id, has);
            var names = chain.Select(c => c.Id).ToList();
            link.Send(new PeerMessage { Op = Ops.Checkpoints, Checkpoints = names, Name = id });
            var writer = CheckpointStreamWriter.Begin(link.Stream);
            foreach (var checkpoint in chain)
                writer.Write(checkpoint.Path, pagesLater: false, checkpoint.Id);
            writer.End();
            var answer = link.Expect(Ops.Ok);
            return answer.Checkpoints.SequenceEqual(names) ? null : $"node {buddy.Name} kept {string.Join(", ", answer.Checkpoints)}, not {string.Join(", ", names)}";
        }
        catch (Exception e) when (e is IOException or ImageStoreException or ImageFormatException)
        {
            return $"node {buddy.Name}: {e.Message}";
        }
    }

    /// <summary>The receiving end: the copy's checkpoints said, the new ones taken in, the chain of the latest kept.</summary>
    public static void Receive(NodeServices services, PeerLink link, PeerMessage request)
    {
        if (!AmberHome.IsValidGroupName(request.Name))
        {
            link.Send(PeerMessage.Failure($"'{request.Name}' is not a group name"));
            return;
        }
        string directory = Directory(services.Home, request.Name, link.Peer);
        System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var copy = new GroupStore(directory);
        link.Send(new PeerMessage { Op = Ops.Ok, Checkpoints = [.. copy.Scan().Checkpoints.Select(c => c.Id)] });
        var coming = link.Expect(Ops.Checkpoints);
        var reader = CheckpointStreamReader.Begin(link.Stream, directory, sign: true);
        var received = new List<string>();
        while (reader.Next() is { } checkpoint)
            received.Add(checkpoint.Name);
        // Only what the latest needs stays (the copy is for a restore of the part's latest).
        if (received.SequenceEqual(coming.Checkpoints) && copy.Find(coming.Name) is not null)
        {
            var kept = copy.Chain(coming.Name).Select(c => c.Id).ToHashSet(StringComparer.Ordinal);
            foreach (var entry in copy.Scan().Entries.Where(e => !kept.Contains(e.Name)))
                CheckpointStore.Delete(entry.Path);
        }
        link.Send(new PeerMessage { Op = Ops.Ok, Checkpoints = received, Bytes = reader.BytesRead });
    }
}
