using Amber.Image.Schema;
using Amber.Kernel.Files;

namespace Amber.Checkpoint.Resources.SystemV;

/// <summary>
/// Puts the System V semaphore sets and message queues the checkpoint saved back as they were, just
/// before the processes run again: same ids, keys, owners and modes, the saved values and messages
/// (an object that still has its id and key is reused and set to the saved state).
/// </summary>
public static class SysvIpcRestorer
{
    public static void Restore(ProcessImage root)
    {
        try
        {
            foreach (var set in root.SysvSemaphores)
            {
                SysvIpc.Recreate(new SysvSemaphoreSet(set.Key, set.Id, set.Mode, set.Uid, set.Gid,
                    [.. set.Values.Select(v => checked((ushort)v))], []));
            }
            foreach (var queue in root.SysvQueues)
            {
                SysvIpc.Recreate(new SysvMessageQueue(queue.Key, queue.Id, queue.Mode, queue.Uid, queue.Gid, 0, 0,
                    [.. queue.Messages.Select(m => (m.Type, m.Text.ToByteArray()))]));
            }
        }
        catch (IOException e)
        {
            throw new CheckpointException($"cannot restore System V IPC: {e.Message}");
        }
    }
}
