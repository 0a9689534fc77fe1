using Amber.Image.Schema;

namespace Amber.Checkpoint.Resources;

/// <summary>Where in the checkpointed trees an object several processes share is made again.</summary>
public static class ProcessTree
{
    /// <summary>
    /// The lowest process of the tree that is an ancestor of (or one of) all <paramref name="pids"/>;
    /// 0 — the forest of a group checkpoint (<see cref="ImageNames.Forest"/>) — when they are in different trees.
    /// </summary>
    public static int CommonAncestor(IReadOnlyList<int> pids, IReadOnlyDictionary<int, ProcessImage> byPid)
    {
        List<int> Chain(int pid)
        {
            var chain = new List<int>();
            for (int at = pid; at != 0 && byPid.ContainsKey(at); at = byPid[at].Ppid)
                chain.Add(at);
            return chain;
        }
        var common = Chain(pids[0]);
        foreach (int pid in pids.Skip(1))
        {
            var chain = Chain(pid).ToHashSet();
            common = [.. common.Where(chain.Contains)];
        }
        if (common.Count > 0)
            return common[0];
        if (!byPid.ContainsKey(0))
            throw new InvalidOperationException($"processes {string.Join(", ", pids)} have no common ancestor and there is no forest");
        return 0;
    }
}
