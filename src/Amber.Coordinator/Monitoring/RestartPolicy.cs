using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Coordinator.Store;
using Amber.Kernel.Processes;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Monitoring;

/// <summary>
/// What happens when tree roots of a group end. One that ended by a signal or with a failure status
/// (or that the coordinator cannot know about: not its child) is a failure: with restart-on-failure,
/// the rest of the group is stopped and the whole group restored from its last checkpoint (a node's
/// part of a group across nodes: the whole group across them, by its leader). Otherwise the roots are
/// just forgotten.
/// </summary>
public sealed class RestartPolicy(ChildReaper reaper, IGroupOperations operations, ILogger logger)
{
    /// <summary>Forgets the ended roots; the restart to run, if one is due.</summary>
    public Func<ControlResponse>? OnMembersEnded(GroupRuntime group, List<int> dead)
    {
        var failures = new List<string>();
        foreach (int root in dead)
        {
            bool known = reaper.TryGetEnd(root, out var end);
            string how = known ? end.ToString() : "ended (not a child of the coordinator: status unknown)";
            bool failed = !known || !end.Exited || end.ExitCode != 0;
            logger.MemberEnded(failed ? LogLevel.Warning : LogLevel.Information, group.Config.Name, root, how);
            if (failed)
                failures.Add($"{root} {how}");
            group.Config.Roots.Remove(root);
            group.Config.Launched.Remove(root);
        }
        group.Save();
        if (failures.Count == 0 || !group.Config.RestartOnFailure)
            return null;
        // A part of a group across nodes: back with the whole group, at one cut, by its leader.
        if (operations.RestartAcrossNodes(group, string.Join("; ", failures)))
            return null;
        var latest = group.Store.LatestWhole(withStorage: group.Config.Storage.Count > 0);
        if (latest is null)
        {
            logger.CannotRestart(group.Config.Name, GroupStore.NoneWhole(group.Store, group.Config.Storage.Count > 0));
            return null;
        }
        return () =>
        {
            logger.Restarting(group.Config.Name, string.Join("; ", failures), latest.Id);
            group.Config.Roots.Clear();
            group.KillAll(unplug: true);
            var response = operations.Restore(group, latest);
            if (response.Ok)
            {
                group.Config.Restarts++;
                group.Save();
                logger.Restarted(group.Config.Name, group.Config.Restarts);
            }
            return response;
        };
    }
}
