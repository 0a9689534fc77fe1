using Amber.Checkpoint.Freeze;
using Amber.Image.Schema;
using Amber.Kernel.Files;
using Amber.Kernel.Ptrace;
using Google.Protobuf;

namespace Amber.Checkpoint.Resources.SystemV;

/// <summary>
/// System V semaphore sets and message queues live in the kernel, not in a process, and nothing
/// links a process to the ones it uses. A checkpoint saves those its processes were seen using —
/// the last operation on a semaphore, or the last message sent or received, came from one of them,
/// or one of their threads waits in semop, msgsnd or msgrcv on it — into the root's image.
/// </summary>
public static class SysvIpcDumper
{
    public static void Dump(FrozenGroup frozen, ProcessImage root)
    {
        var pids = frozen.Members.Select(m => m.Pid).ToHashSet();
        var waitedOn = new HashSet<(bool Semaphore, int Id)>();
        foreach (var thread in frozen.Processes.SelectMany(p => p.Threads))
        {
            long call = thread.Registers.InterruptedSyscall;
            if (call is Registers.Syscalls.Semop or Registers.Syscalls.Semtimedop)
                waitedOn.Add((true, (int)thread.Registers.Rdi));
            else if (call is Registers.Syscalls.Msgsnd or Registers.Syscalls.Msgrcv)
                waitedOn.Add((false, (int)thread.Registers.Rdi));
        }
        foreach (var set in SysvIpc.SemaphoreSets().Where(s => waitedOn.Contains((true, s.Id)) || s.LastPids.Any(pids.Contains)))
        {
            root.SysvSemaphores.Add(new SysvSemaphoreSetImage
            {
                Key = set.Key, Id = set.Id, Mode = set.Mode, Uid = set.Uid, Gid = set.Gid, Values = { set.Values.Select(v => (uint)v) },
            });
        }
        foreach (var queue in SysvIpc.MessageQueues((id, sender, receiver) => waitedOn.Contains((false, id)) || pids.Contains(sender) || pids.Contains(receiver)))
        {
            var image = new SysvMessageQueueImage { Key = queue.Key, Id = queue.Id, Mode = queue.Mode, Uid = queue.Uid, Gid = queue.Gid };
            foreach (var (type, text) in queue.Messages)
                image.Messages.Add(new SysvMessage { Type = type, Text = ByteString.CopyFrom(text) });
            root.SysvQueues.Add(image);
        }
    }
}
