using System.Diagnostics;
using Amber.Kernel.Proc;
using Amber.Kernel.Processes;
using Amber.Kernel.Ptrace;

namespace Amber.Checkpoint.Freeze;

/// <summary>
/// Every process of a group — several process trees — stopped at one barrier. With the group's
/// cgroup, the barrier is the cgroup freezer: every task stops at once, then each thread is seized
/// and interrupted, and the cgroup is thawed: the pending interrupts stop every thread before it
/// runs a single instruction more, and ptrace holds them from there (docs/kernel.md §12). Without
/// a cgroup (a single tree), processes are stopped one after another as they are found.
/// </summary>
public sealed class FrozenGroup : IDisposable
{
    private static readonly TimeSpan FreezeTimeout = TimeSpan.FromSeconds(10);
    private readonly List<FrozenTree> _trees = [];

    /// <summary>From the first stop requested to the last thread stopped.</summary>
    public TimeSpan Barrier { get; private set; }

    public IReadOnlyList<FrozenTree> Trees => _trees;

    /// <summary>Every process, tree by tree, each tree root first and parents before children.</summary>
    public IEnumerable<TreeMember> Members => _trees.SelectMany(t => t.Members);

    public IEnumerable<FrozenProcess> Processes => _trees.SelectMany(t => t.Processes);

    public static FrozenGroup Freeze(int root, Action<int> checkBeforeFreeze)
    {
        var group = new FrozenGroup();
        var clock = Stopwatch.StartNew();
        group._trees.Add(FrozenTree.Freeze(root, checkBeforeFreeze));
        group.Barrier = clock.Elapsed;
        return group;
    }

    /// <summary>
    /// Freezes every process of <paramref name="cgroup"/>. Its trees are rooted at the processes whose
    /// parent is not in it (the programs launched or attached, daemons that double-forked).
    /// </summary>
    public static FrozenGroup Freeze(Cgroup cgroup, Action<int> checkBeforeFreeze)
    {
        var group = new FrozenGroup();
        group.Barrier = cgroup.Freeze(FreezeTimeout);
        try
        {
            try
            {
                var members = cgroup.Processes().Where(p => ProcFs.TryReadStatus(p, out var s) && s!.State is not ('Z' or 'X')).ToHashSet();
                if (members.Count == 0)
                    throw new CheckpointException($"cgroup {cgroup.Path} has no live process");
                var covered = new HashSet<int>();
                foreach (int root in members.Where(p => !members.Contains(ProcFs.ReadStat(p).ParentPid)).Order())
                {
                    if (covered.Contains(root))
                        continue;
                    var tree = FrozenTree.Seize(root, checkBeforeFreeze, cgroup.Thaw);
                    group._trees.Add(tree);
                    covered.UnionWith(tree.Members.Select(m => m.Pid));
                }
            }
            finally
            {
                // From here the pending interrupts hold every thread; nothing runs in between.
                cgroup.Thaw();
            }
            foreach (var tree in group._trees)
                tree.CollectStops();
            return group;
        }
        catch
        {
            group.Resume();
            throw;
        }
    }

    /// <summary>Puts every process back as it was. Never throws; returns what went wrong.</summary>
    public List<string> Resume() => [.. _trees.SelectMany(t => t.Resume())];

    /// <summary>Ends every process (children first), after a successful dump.</summary>
    /// <param name="killed">Called once every process has been sent SIGKILL (none runs another instruction), before they are collected.</param>
    public void Kill(Action? killed = null)
    {
        // A PID namespace's PID 1 does not finish ending before every other process in it is collected
        // (by its tracer, amber, here): all are sent SIGKILL, then collected as they end.
        var processes = _trees.SelectMany(t => t.Processes.Reverse()).ToList();
        foreach (var p in processes)
            p.SendKill();
        killed?.Invoke();
        Tracee.CollectEnded(processes.SelectMany(p => p.Threads.Select(t => t.Tid)), TimeSpan.FromSeconds(30));
    }

    public void Dispose()
    {
        foreach (var tree in _trees)
            tree.Dispose();
    }
}
