using Amber.Checkpoint.Restore;
using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Inject;
using Amber.Kernel.Proc;

namespace Amber.Checkpoint.Resources.ProcessGroups;

/// <summary>
/// Sessions and process groups, as a restore can make them again. A process is born into its
/// creator's session and group; it can start a session or a group of its own (id = its PID) or join
/// a group of its session. So each process comes back as one of:
/// <list type="bullet">
/// <item>a leader (setsid / setpgid(0, 0)), or in its parent's session and group (inherited);</item>
/// <item>a member of a group of its parent's session whose leader is restored before it (joined);</item>
/// <item>a member of a group whose leader is gone (a subreaper's orphans): a placeholder process with
/// that id, a child of the parent, makes the group, the member joins it, the placeholder ends;</item>
/// <item>in a session whose leader is gone: a placeholder with that id starts the session and creates
/// the process (CLONE_PARENT: it is still its parent's child), in the session's group or its own.</item>
/// </list>
/// Anything else is refused at checkpoint, and so is an id a placeholder needs that a process outside
/// still uses (a group or session of others, or a live PID).
/// </summary>
public static class Sessions
{
    /// <summary>The ids of the placeholders the restore makes for <paramref name="child"/>, a child of <paramref name="parent"/> (0: none).</summary>
    public static (int Session, int Group) PlaceholdersFor(ProcessImage child, ProcessImage parent, IReadOnlySet<int> pids)
    {
        int session = child.Sid != child.Pid && child.Sid != parent.Sid && !pids.Contains(child.Sid) ? child.Sid : 0;
        int group = session == 0 && child.Pgid != child.Pid && child.Pgid != parent.Pgid && !pids.Contains(child.Pgid) ? child.Pgid : 0;
        return (session, group);
    }

    /// <summary>Every placeholder id the restore of <paramref name="images"/> needs.</summary>
    public static HashSet<int> PlaceholderIds(IReadOnlyList<ProcessImage> images)
    {
        var byPid = images.ToDictionary(i => i.Pid);
        var pids = byPid.Keys.ToHashSet();
        var ids = new HashSet<int>();
        foreach (var image in images.Where(i => byPid.ContainsKey(i.Ppid)))
        {
            var (session, group) = PlaceholdersFor(image, byPid[image.Ppid], pids);
            if (session != 0)
                ids.Add(session);
            if (group != 0)
                ids.Add(group);
        }
        return ids;
    }

    /// <summary>
    /// Refuses, by process and id, sessions and groups the restore could not make again. <paramref name="images"/>
    /// are in the order the restore builds them (each tree depth first, children in order). With
    /// <paramref name="newPidNamespace"/> (theirs, made again by the restore) no id can be in use by
    /// another process there.
    /// </summary>
    public static void Check(IReadOnlyList<ProcessImage> images, IReadOnlyList<int> roots, bool newPidNamespace = false)
    {
        var byPid = images.ToDictionary(i => i.Pid);
        var pids = byPid.Keys.ToHashSet();
        var built = new HashSet<int>();
        foreach (var image in BuildOrder(images, roots))
        {
            built.Add(image.Pid);
            if (!byPid.TryGetValue(image.Ppid, out var parent) || roots.Contains(image.Pid))
                continue; // a root keeps whatever session and group amber's own is (a shell's, say)
            var (session, group) = PlaceholdersFor(image, parent, pids);
            if (session == 0 && image.Sid != image.Pid && image.Sid != parent.Sid)
                throw new UnsupportedResourceException(image.Pid, $"its session {image.Sid}", $"a session led by process {image.Sid}, other than its parent's (process {parent.Pid}, session {parent.Sid})");
            if (session != 0 && image.Pgid != image.Sid && image.Pgid != image.Pid)
                throw new UnsupportedResourceException(image.Pid, $"its process group {image.Pgid}", $"a group of session {image.Sid}, whose leader has exited, other than the session's own");
            if (session == 0 && group == 0 && image.Pgid != image.Pid && image.Pgid != parent.Pgid)
            {
                // A group whose leader is in the checkpoint: joined, so the leader must come first, in the same session.
                var leader = byPid[image.Pgid];
                if (!built.Contains(leader.Pid) || leader.Sid != image.Sid)
                    throw new UnsupportedResourceException(image.Pid, $"its process group {image.Pgid}", $"the group of process {leader.Pid}, which the restore makes after it or in another session");
            }
        }
        foreach (int id in newPidNamespace ? [] : PlaceholderIds(images))
        {
            if (UsedOutside(id, pids) is { } user)
                throw new CheckpointException($"a process of the checkpoint is in process group or session {id}, which process {user} outside it still {(user == id ? "is" : "uses")}: a restore could not make it again");
        }
    }

    /// <summary>The order a restore builds processes in: each tree depth first, children in saved order.</summary>
    public static IEnumerable<ProcessImage> BuildOrder(IReadOnlyList<ProcessImage> images, IReadOnlyList<int> roots)
    {
        var children = images.GroupBy(i => i.Ppid).ToDictionary(g => g.Key, g => g.ToList());
        var byPid = images.ToDictionary(i => i.Pid);
        IEnumerable<ProcessImage> Walk(ProcessImage p) =>
            children.TryGetValue(p.Pid, out var c) ? c.Where(x => !roots.Contains(x.Pid)).SelectMany(Walk).Prepend(p) : [p];
        return roots.Where(byPid.ContainsKey).SelectMany(r => Walk(byPid[r]));
    }

    /// <summary>A process outside <paramref name="tree"/> that has PID <paramref name="id"/>, or is in that group or session.</summary>
    private static int? UsedOutside(int id, IReadOnlySet<int> tree)
    {
        foreach (int pid in ProcFs.ListProcesses())
        {
            if (tree.Contains(pid))
                continue;
            if (pid == id)
                return pid;
            try
            {
                var stat = ProcFs.ReadStat(pid);
                if (stat.ProcessGroup == id || stat.Session == id)
                    return pid;
            }
            catch (Kernel.TargetGoneException)
            {
            }
        }
        return null;
    }

    /// <summary>
    /// Session and process group, as far as they can be rebuilt: leaders start their own; a member
    /// joins its group if its leader was restored before it; otherwise it stays where it was born.
    /// </summary>
    public static void Join(RemoteCalls calls, ProcessImage image, RestoreTree tree, List<string> warnings)
    {
        int pid = image.Pid;
        if (image.Sid == pid)
        {
            calls.NewSession();
            return;
        }
        if (image.Pgid == pid)
        {
            calls.NewProcessGroup();
            return;
        }
        var parent = tree.Images.FirstOrDefault(i => i.Pid == image.Ppid);
        if (parent is null || parent.Pgid == image.Pgid)
            return;
        try
        {
            calls.JoinProcessGroup(image.Pgid);
        }
        catch (KernelCallException e)
        {
            warnings.Add($"process {pid} could not rejoin process group {image.Pgid}: {e.Message}");
        }
    }
}
