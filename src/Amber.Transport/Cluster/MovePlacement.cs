using System.Text.Json;
using Amber.Coordinator.Groups;

namespace Amber.Transport.Cluster;

/// <summary>
/// A part of a group across nodes migrated to another node, placed there in the catalog by the
/// transaction that confirms the move. The source ships the part's checkpoint of the group's latest
/// checkpoint across nodes (the cut) to the destination before anything else, so that the part can
/// be rolled back to that cut there; once every process of the part has been ended at the source
/// (none runs again), the catalog's latest entry is replaced, in one transaction that holds only if
/// it is still the latest, by the same checkpoint with the part on the destination (its copies still
/// kept as the source's part: <see cref="CatalogPart.CopiesOf"/>). Only then is the destination told
/// to release it; a destination that loses the link before that word, and finds the part placed on
/// it, releases it all the same (<see cref="PlacedHere"/>). So a loss of either node at any moment
/// finds the part placed where it runs: the source's loss brings nothing back twice, the destination's
/// brings the part back from its copies.
/// </summary>
internal sealed class MovePlacement
{
    private readonly EtcdClient _store;
    private readonly string _self;
    private readonly CatalogEntry _latest;
    private readonly CatalogPart _part;

    private MovePlacement(EtcdClient store, string self, CatalogEntry latest, CatalogPart part)
    {
        _store = store;
        _self = self;
        _latest = latest;
        _part = part;
    }

    /// <summary>The checkpoint of this node's part in the latest checkpoint across nodes: what the destination gets first.</summary>
    public string Cut => _part.Checkpoint;

    /// <summary>The entry that placed the part on the destination, once <see cref="Place"/> did.</summary>
    public string Placed { get; private set; } = "";

    /// <summary>
    /// The placement of <paramref name="group"/>, this node's part of group <paramref name="across"/>,
    /// if the catalog's latest checkpoint across nodes has a part of it here that its store still has;
    /// null (and why, if it is not that the group has no checkpoint across nodes) otherwise.
    /// </summary>
    /// <exception cref="EtcdException">The store is out of reach, or refuses.</exception>
    public static MovePlacement? Find(EtcdClient store, string self, GroupRuntime group, string across, out string? why)
    {
        why = null;
        if (GroupCatalog.Latest(store, across) is not { } latest)
            return null;
        var part = latest.Parts.FirstOrDefault(p => p.Node == self && p.LocalOr(across) == group.Config.Name);
        if (part is null)
            why = $"the latest checkpoint across nodes of group {across}, {latest.Id}, has no part of group {group.Config.Name} on this node";
        else if (group.Store.Find(part.Checkpoint) is null)
            why = $"this node no longer has checkpoint {part.Checkpoint}, its part of {latest.Id}";
        return why is null ? new MovePlacement(store, self, latest, part!) : null;
    }

    /// <summary>
    /// The latest entry replaced by one with the part on <paramref name="to"/> as its group
    /// <paramref name="arrivedAs"/>, if it is still the latest: null once placed, or why not (the
    /// catalog then places it by the leader's next checkpoint).
    /// </summary>
    public string? Place(string to, string arrivedAs)
    {
        var now = DateTimeOffset.UtcNow;
        // A copy through JSON: the entry read stays as it was.
        var moved = JsonSerializer.Deserialize(JsonSerializer.Serialize(_latest, GroupCatalog.Json), GroupCatalog.Json)!;
        moved.Id = GroupCatalog.NewId(now, _latest.Leader);
        moved.CreatedUnixMs = now.ToUnixTimeMilliseconds();
        moved.Replaces = _latest.Id;
        var part = moved.Parts.Single(p => p.Node == _self && p.Checkpoint == _part.Checkpoint && p.Local == _part.Local);
        part.CopiesOf = _part.CopiedAs;
        part.CopiesOfLocal = _part.CopiedLocalOr(_latest.Group) is var copied && copied != _latest.Group ? copied : "";
        part.Node = to;
        part.Local = arrivedAs == _latest.Group ? "" : arrivedAs;
        part.Copies.Remove(to); // a copy there goes with the part if that node is lost
        try
        {
            if (!_store.PutAllIfValue(GroupCatalog.LatestKey(_latest.Group), _latest.Id,
                    [(GroupCatalog.CheckpointsPrefix(_latest.Group) + moved.Id, JsonSerializer.Serialize(moved, GroupCatalog.Json)), (GroupCatalog.LatestKey(_latest.Group), moved.Id)]))
                return $"the catalog's latest checkpoint across nodes of group {_latest.Group} is no longer {_latest.Id}";
        }
        catch (EtcdException e)
        {
            return $"the cluster's store is out of reach: {e.Message}";
        }
        Placed = moved.Id;
        return null;
    }

    /// <summary>
    /// Whether the catalog's latest checkpoint across nodes places part <paramref name="group"/> of
    /// its group across nodes on <paramref name="self"/>, moved there from <paramref name="from"/>
    /// (where its name was <paramref name="sentAs"/>): the move was confirmed, whatever became of the
    /// link that would have said so.
    /// </summary>
    public static bool PlacedHere(EtcdClient store, GroupConfig group, string self, string from, string sentAs)
    {
        try
        {
            string across = group.Across;
            return GroupCatalog.Latest(store, across) is { Replaces.Length: > 0 } latest
                && latest.Parts.Any(p => p.Node == self && p.LocalOr(across) == group.Name && p.CopiesOf.Length > 0)
                && GroupCatalog.Entry(store, across, latest.Replaces)?.Parts.Any(p => p.Node == from && p.LocalOr(across) == sentAs) == true;
        }
        catch (EtcdException)
        {
            return false;
        }
    }
}
