using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Kernel.Processes;

namespace Amber.Coordinator.Monitoring;

/// <summary>
/// What happens when tree roots of a group end. One that ended by a signal or with a failure status
/// (or that the coordinator cannot know about: not its child) is a failure: with restart-on-failure,
/// the rest of the group is stopped and the whole group restored from its last checkpoint. Otherwise
/// the roots are just forgotten.
/// </summary>
public sealed class RestartPolicy(ChildReaper reaper, IGroupOperations operations)
{
    /// <summary>Forgets the ended roots; the restart to run, if one is due.</summary>
    public Func<ControlResponse>? OnMembersEnded(GroupRuntime group, List<int> dead)
    {
        var failures = new List<string>();
        foreach (int root in dead)
        {
            bool known = reaper.TryGetEnd(root, out var end);
            string how = known ? end.ToString() : "ended (not a child of the coordinator: status unknown)";
            CoordinatorLog.Write($"group {group.Config.Name}: member {root} {how}");
            if (!known || !end.Exited || end.ExitCode != 0)
                failures.Add($"{root} {how}");
            group.Config.Roots.Remove(root);
            group.Config.Launched.Remove(root);
        }
        group.Save();
        var latest = group.Store.Latest();
        if (failures.Count == 0 || !group.Config.RestartOnFailure)
            return null;
        if (latest is null)
        {
            CoordinatorLog.Write($"group {group.Config.Name}: cannot restart: no checkpoint yet");
            return null;
        }
        return () =>
        {
            CoordinatorLog.Write($"group {group.Config.Name}: restarting after {string.Join("; ", failures)}: stopping the rest, restoring {latest.Id}");
            group.Config.Roots.Clear();
            group.KillAll();
            var response = operations.Restore(group, latest);
            if (response.Ok)
            {
                group.Config.Restarts++;
                group.Save();
                CoordinatorLog.Write($"group {group.Config.Name}: restarted (restart {group.Config.Restarts})");
            }
            return response;
        };
    }
}
