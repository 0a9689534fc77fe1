using Amber.Kernel;
using Amber.Kernel.Proc;

namespace Amber.Coordinator.Daemon.Handlers;

internal static class ProcessTree
{
    /// <summary>A process and its descendants now.</summary>
    public static List<int> Of(int pid)
    {
        var pids = new List<int> { pid };
        for (int i = 0; i < pids.Count; i++)
        {
            try { pids.AddRange(ProcFs.ListChildren(pids[i])); }
            catch (TargetGoneException) { }
        }
        return pids;
    }
}
