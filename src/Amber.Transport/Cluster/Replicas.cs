using System.Text.Json;
using Amber.Coordinator;
using Amber.Coordinator.Daemon;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Security;
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
/// copy keeps the chain of the latest checkpoint it got, and nothing older, and the group's settings
/// (and an encrypted group's key) as they came with it: all another node needs to run the part when
/// its own node is lost (<see cref="Adopt"/>).
/// </summary>
internal static class Replicas
{
    /// <summary>Where this node keeps its copies of <paramref name="node"/>'s checkpoints of <paramref name="group"/>.</summary>
    public static string Directory(AmberHome home, string group, string node) => Path.Combine(Root(home), group, node);

    /// <summary>Where this node keeps its copies of other nodes' parts: GROUP/NODE under it.</summary>
    private static string Root(AmberHome home) => Path.Combine(home.StateDirectory, "replicas");

    private const string SettingsFile = "group.json";
    private const string KeyFile = "key";

    /// <summary>The copies being received now (their directories), which <see cref="Prune"/> leaves alone.</summary>
    private static readonly HashSet<string> Receiving = new(StringComparer.Ordinal);

    /// <summary>
    /// Sends checkpoint <paramref name="id"/> of <paramref name="store"/> (this node's part of
    /// a group across nodes, this node's group <paramref name="config"/>) to <paramref name="buddy"/>'s
    /// copy, and what it needs that the copy lacks: null once the copy has it, or why not.
    /// </summary>
    public static string? Send(GroupStore store, GroupConfig config, string id, NodeRecord buddy, NodeIdentity identity, TimeSpan timeout)
    {
        if (!System.Net.IPEndPoint.TryParse(buddy.Address, out var address))
            return $"node {buddy.Name}'s address '{buddy.Address}' in the cluster's store is not ADDR:PORT";
        try
        {
            using var link = PeerLink.Connect(address, identity, timeout);
            link.Greet();
            link.Send(new PeerMessage { Op = Ops.Replica, Name = config.Name, Group = config, Key = GroupKey.Of(config)?.ToBytes() });
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
        lock (Receiving)
        {
            if (!Receiving.Add(directory))
            {
                link.Send(PeerMessage.Failure($"a copy of node {link.Peer}'s part of group {request.Name} is being received already"));
                return;
            }
        }
        try
        {
            Receive(link, request, directory);
        }
        finally
        {
            lock (Receiving)
                Receiving.Remove(directory);
        }
    }

    private static void Receive(PeerLink link, PeerMessage request, string directory)
    {
        System.IO.Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        var copy = new GroupStore(directory);
        if (request.Group is not { } settings || settings.Name != request.Name)
        {
            link.Send(PeerMessage.Failure($"a copy of group {request.Name} must come with the group's settings"));
            return;
        }
        // The settings and key as they are now: the part runs with them if its node is lost.
        StateFiles.Write(Path.Combine(directory, SettingsFile), JsonSerializer.Serialize(settings, GroupJson.Default.GroupConfig));
        string keyFile = Path.Combine(directory, KeyFile);
        File.Delete(keyFile);
        if (request.Key is { } key)
        {
            try
            {
                ImageKey.Save(keyFile, key);
            }
            catch (ImageStoreException e)
            {
                link.Send(PeerMessage.Failure($"the key of group {request.Name} cannot be kept with its copy: {e.Message}"));
                return;
            }
        }
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

    /// <summary>
    /// The copies this node keeps that their group's catalog no longer needs, removed: a copy whose
    /// newest checkpoint is a part of a recorded checkpoint across nodes of the group, but which the
    /// group's latest (as the store last said, <paramref name="group"/>) does not list as copied here —
    /// a part moved away, a group whose nodes changed (each part is copied to the next node, round the
    /// ring). A copy being received, one of a checkpoint not recorded yet (its part of the next), and
    /// any of a group the store has no catalog of, stay. What was removed, one line each.
    /// </summary>
    public static List<string> Prune(AmberHome home, string self, Func<string, GroupAcrossNodes?> group)
    {
        var removed = new List<string>();
        string root = Root(home);
        if (!System.IO.Directory.Exists(root))
            return removed;
        foreach (string groupDirectory in System.IO.Directory.EnumerateDirectories(root))
        {
            string local = Path.GetFileName(groupDirectory);
            foreach (string directory in System.IO.Directory.EnumerateDirectories(groupDirectory))
            {
                string origin = Path.GetFileName(directory);
                string across;
                try
                {
                    across = JsonSerializer.Deserialize(File.ReadAllText(Path.Combine(directory, SettingsFile)), GroupJson.Default.GroupConfig)?.Across ?? "";
                }
                catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException)
                {
                    continue; // not one that can be told whose: left as it is
                }
                bool Copied(CatalogPart p) => p.CopiedAs == origin && p.CopiedLocalOr(across) == local;
                if (across.Length == 0 || group(across) is not { Latest: { } entry } catalog || entry.Parts.Any(p => Copied(p) && p.Copies.Contains(self)))
                    continue;
                lock (Receiving)
                {
                    if (Receiving.Contains(directory))
                        continue;
                    var newest = new GroupStore(directory).List().MaxBy(c => c.Id, StringComparer.Ordinal);
                    if (newest is null || !catalog.Entries.Any(e => e.Parts.Any(p => Copied(p) && p.Checkpoint == newest.Id)))
                        continue;
                    System.IO.Directory.Delete(directory, recursive: true);
                }
                removed.Add($"this node's copy of node {origin}'s part {local} of group {across}: the group's latest checkpoint across nodes, {entry.Id}, keeps none here");
            }
            if (!System.IO.Directory.EnumerateFileSystemEntries(groupDirectory).Any())
                System.IO.Directory.Delete(groupDirectory);
        }
        return removed;
    }

    /// <summary>
    /// This node's copy of <paramref name="origin"/>'s part <paramref name="originGroup"/>, which is to
    /// run here since that node is lost: made a group of this node named <paramref name="name"/>, a part
    /// of group <paramref name="across"/>, with the settings and key that came with the copy, and no
    /// process yet (<see cref="NodeServices.Receive"/>); the copy's checkpoints stay where they are until
    /// it runs (<see cref="Settle"/>). Null, and why, if it cannot be.
    /// </summary>
    public static GroupRuntime? Adopt(NodeServices services, string across, string originGroup, string origin, string name, out string? problem)
    {
        string directory = Directory(services.Home, originGroup, origin);
        GroupConfig? settings = null;
        byte[]? key = null;
        try
        {
            settings = JsonSerializer.Deserialize(File.ReadAllText(Path.Combine(directory, SettingsFile)), GroupJson.Default.GroupConfig);
            if (File.Exists(Path.Combine(directory, KeyFile)))
                key = ImageKey.Load(Path.Combine(directory, KeyFile)).ToBytes();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or JsonException or ImageStoreException)
        {
            problem = $"this node's copy of node {origin}'s part of group {across} has no settings that can be read: {e.Message}";
            return null;
        }
        if (settings is null)
        {
            problem = $"this node's copy of node {origin}'s part of group {across} has no settings";
            return null;
        }
        settings.Name = name;
        settings.PartOf = across;
        return services.Receive(settings, key, out problem);
    }

    /// <summary>The copy of <paramref name="origin"/>'s part <paramref name="originGroup"/>, where its checkpoint <paramref name="id"/> is (null: not here).</summary>
    public static StoredCheckpoint? Find(AmberHome home, string originGroup, string origin, string id) =>
        new GroupStore(Directory(home, originGroup, origin)).Find(id);

    /// <summary>
    /// The copy of <paramref name="origin"/>'s part, restored here as <paramref name="group"/>: the chain
    /// of its checkpoint <paramref name="id"/> moved into the group's store (its next checkpoint builds on
    /// them), and the copy removed (the part is this node's now). Why not, or null.
    /// </summary>
    public static string? Settle(AmberHome home, GroupRuntime group, string originGroup, string origin, string id)
    {
        string directory = Directory(home, originGroup, origin);
        try
        {
            System.IO.Directory.CreateDirectory(group.Store.Directory);
            foreach (var checkpoint in new GroupStore(directory).Chain(id))
                System.IO.Directory.Move(checkpoint.Path, Path.Combine(group.Store.Directory, Path.GetFileName(checkpoint.Path)));
            System.IO.Directory.Delete(directory, recursive: true);
            return null;
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or ImageStoreException or ImageFormatException)
        {
            return $"the checkpoints of node {origin}'s part could not be moved from {directory} into group {group.Config.Name}'s store: {e.Message}";
        }
    }
}
