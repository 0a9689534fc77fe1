using Amber.Coordinator.Control;
using Amber.Coordinator.Groups;
using Amber.Kernel;
using Amber.Kernel.Processes;
using Amber.Kernel.Proc;
using Microsoft.Extensions.Logging;

namespace Amber.Coordinator.Monitoring;

/// <summary>
/// The coordinator's watch over its groups, one tick every 100 ms: reap its children (it is a
/// subreaper: whatever a group orphans comes to it), notice tree roots that ended, and start what
/// is due on each group no operation holds — a restart (<see cref="RestartPolicy"/>), a merge the
/// merge policy asked for, the retention policy after a checkpoint, a scheduled checkpoint — on a thread of its own, the group's Busy held
/// until it ends; and refresh the process tables.
/// </summary>
public sealed class GroupMonitor(GroupSet groups, ChildReaper reaper, IGroupOperations operations, ILogger logger)
{
    public static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(100);

    private readonly RestartPolicy _restart = new(reaper, operations, logger);

    public void Check()
    {
        reaper.Collect();
        foreach (var group in groups.All())
        {
            if (!group.Busy.Wait(0))
                continue; // an operation is running: it refreshes the table itself
            Func<ControlResponse>? background = null;
            string what = "";
            try
            {
                var dead = group.Config.Roots.Where(r => !IsAlive(r)).ToList();
                if (dead.Count > 0)
                {
                    background = _restart.OnMembersEnded(group, dead);
                    what = "restart";
                }
                else if (group.MergePending)
                {
                    background = () => operations.Merge(group);
                    what = "merge";
                }
                else if (group.RetentionPending)
                {
                    background = () => operations.Retain(group);
                    what = "retention";
                }
                else if (group.Schedule.IsDue(DateTime.UtcNow) && group.LiveProcesses().Count > 0)
                {
                    group.Schedule.Restart(group.Config.EverySeconds);
                    background = () => operations.Checkpoint(group);
                    what = "scheduled checkpoint";
                }
                group.RefreshTable();
            }
            catch (Exception e) when (e is IOException or KernelCallException or TargetGoneException)
            {
                logger.MonitorProblem(group.Config.Name, e.Message);
            }
            finally
            {
                if (background is null)
                    group.Busy.Release();
                else
                    RunInBackground(group, what, background);
            }
        }
    }

    /// <summary>Runs work the monitor started on a thread of its own; releases the group's Busy at the end.</summary>
    private void RunInBackground(GroupRuntime group, string what, Func<ControlResponse> work) =>
        new Thread(() =>
        {
            try
            {
                var response = work();
                if (!response.Ok)
                    logger.BackgroundFailed(group.Config.Name, what, response.Error);
            }
            catch (Exception e)
            {
                logger.BackgroundFailed(group.Config.Name, what, e.Message);
            }
            finally
            {
                try { group.RefreshTable(); }
                catch (IOException) { }
                group.Busy.Release();
            }
        }) { IsBackground = true, Name = $"amberd-{what}" }.Start();

    private static bool IsAlive(int pid) => ProcFs.TryReadStatus(pid, out var s) && s is not null && s.State is not ('Z' or 'X');
}
