using Amber.Kernel;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Freeze;

/// <summary>A process of the tree: frozen, or a zombie (which has nothing left to freeze).</summary>
public sealed record TreeMember(int Pid, int ParentPid, FrozenProcess? Frozen, int ExitStatus)
{
    public bool IsZombie => Frozen is null;
}

/// <summary>
/// Every process of the tree rooted at one process, stopped: processes are frozen as they are found
/// (parents first), and the tree is listed again until no new child appears, so a fork racing with
/// the freeze is caught. Resume and Kill act on all of them; Dispose resumes whatever is still held.
/// </summary>
public sealed class FrozenTree : IDisposable
{
    private const int MaxPasses = 100;
    private readonly List<TreeMember> _members = [];

    public int RootPid { get; private init; }

    /// <summary>Root first, then breadth-first: every parent before its children.</summary>
    public IReadOnlyList<TreeMember> Members => _members;

    public IEnumerable<FrozenProcess> Processes => _members.Where(m => m.Frozen is not null).Select(m => m.Frozen!);

    public static FrozenTree Freeze(int root, Action<int> checkBeforeFreeze) => Freeze(root, checkBeforeFreeze, collect: true, null);

    /// <summary>
    /// Every process of the tree seized and asked to stop, the stops not collected yet: for a tree in
    /// a frozen cgroup, whose stops arrive once it is thawed (<see cref="CollectStops"/>). If seizing
    /// fails, <paramref name="thaw"/> runs before what was seized is let go.
    /// </summary>
    public static FrozenTree Seize(int root, Action<int> checkBeforeFreeze, Action thaw) => Freeze(root, checkBeforeFreeze, collect: false, thaw);

    public void CollectStops()
    {
        foreach (var p in Processes)
            p.CollectStops();
    }

    private static FrozenTree Freeze(int root, Action<int> checkBeforeFreeze, bool collect, Action? thaw)
    {
        var tree = new FrozenTree { RootPid = root };
        try
        {
            for (int pass = 0; ; pass++)
            {
                if (pass == MaxPasses)
                    throw new CheckpointException($"process {root}: its tree kept changing while being stopped");
                bool added = false;
                foreach (var (pid, parent) in List(root))
                {
                    if (tree._members.Any(m => m.Pid == pid))
                        continue;
                    added = true;
                    try
                    {
                        var stat = ProcFs.ReadStat(pid);
                        if (stat.State is 'Z')
                        {
                            tree._members.Add(new TreeMember(pid, parent, null, stat.ExitCode));
                            continue;
                        }
                        checkBeforeFreeze(pid);
                        tree._members.Add(new TreeMember(pid, parent, collect ? FrozenProcess.Freeze(pid) : FrozenProcess.Seize(pid), 0));
                    }
                    catch (Exception e) when (pid != root && (e is TargetGoneException || e is KernelCallException { Errno: Errnos.EPERM } && Ending(pid)))
                    {
                        // Exited since it was listed, before it could be stopped (ptrace refuses one on its
                        // way out): reaped by its parent, which still ran, it is no longer part of the tree;
                        // the next listing finds it a zombie if its parent is stopped now.
                        WaitUntilEnded(pid);
                    }
                }
                if (!added)
                    return tree;
            }
        }
        catch
        {
            thaw?.Invoke();
            tree.Resume();
            throw;
        }
    }

    /// <summary>Puts every process back as it was. Never throws; returns what went wrong.</summary>
    public List<string> Resume()
    {
        var problems = new List<string>();
        foreach (var p in Processes)
            problems.AddRange(p.Resume().Select(x => $"process {p.Pid}: {x}"));
        return problems;
    }

    public void Dispose()
    {
        foreach (var p in Processes)
            p.Dispose();
    }

    /// <summary>How long a process on its way out may take to be a zombie (a big address space takes a while to tear down).</summary>
    private static readonly TimeSpan ExitWait = TimeSpan.FromSeconds(5);

    /// <summary>Returns once a process on its way out is a zombie or gone (or after <see cref="ExitWait"/>: the next listing sees it as it is then).</summary>
    private static void WaitUntilEnded(int pid)
    {
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (waited.Elapsed < ExitWait)
        {
            try
            {
                if (ProcFs.ReadStat(pid).State is 'Z' or 'X')
                    return;
            }
            catch (TargetGoneException)
            {
                return;
            }
            Thread.Sleep(1);
        }
    }

    /// <summary>Whether process <paramref name="pid"/> is gone, a zombie, or exiting.</summary>
    private static bool Ending(int pid)
    {
        try
        {
            return ProcFs.ReadStat(pid).Ending;
        }
        catch (TargetGoneException)
        {
            return true;
        }
    }

    /// <summary>The tree as it is now: (pid, parent) pairs, breadth-first from the root.</summary>
    private static List<(int Pid, int Parent)> List(int root)
    {
        var result = new List<(int, int)> { (root, 0) };
        for (int i = 0; i < result.Count; i++)
        {
            var (pid, _) = result[i];
            List<int> children;
            try { children = ProcFs.ListChildren(pid); }
            catch (TargetGoneException) when (pid != root) { continue; }
            foreach (int child in children)
            {
                if (result.All(r => r.Item1 != child))
                    result.Add((child, pid));
            }
        }
        return result;
    }
}
