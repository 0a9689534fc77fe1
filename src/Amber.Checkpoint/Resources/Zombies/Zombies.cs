using Amber.Checkpoint.Freeze;
using Amber.Checkpoint.Resources.ProcessGroups;
using Amber.Checkpoint.Restore;
using Amber.Image.Schema;
using Amber.Kernel;
using Amber.Kernel.Inject;
using Amber.Kernel.Memory;
using Amber.Kernel.Proc;
using Amber.Kernel.Ptrace;

namespace Amber.Checkpoint.Resources.Zombies;

/// <summary>
/// A child that exited and was not reaped yet: saved as its ids, name and exit status; made again
/// as a child that exits the same way (by exit_group or by the same signal) and waits for its parent.
/// </summary>
public static class Zombies
{
    private const int RlimitCore = 4;

    /// <summary>What a zombie still has: its ids, its name, how it ended.</summary>
    public static ProcessImage Dump(TreeMember zombie)
    {
        var stat = ProcFs.ReadStat(zombie.Pid);
        return new ProcessImage
        {
            Pid = zombie.Pid, Ppid = zombie.ParentPid, Pgid = stat.ProcessGroup, Sid = stat.Session,
            Comm = ProcFs.ReadStatus(zombie.Pid).Name, Zombie = true, ExitStatus = zombie.ExitStatus,
        };
    }

    /// <summary>A child that had exited unreaped: it exits again, the same way, and waits for its parent.</summary>
    public static void Restore(Tracee child, ProcessImage image, ulong trampoline, RestoreTree tree, List<string> warnings)
    {
        using var memory = new RemoteMemory(child.Pid);
        var injector = new SyscallInjector(child, trampoline, int3Follows: true);
        var calls = HuskProcess.Calls(injector, memory, trampoline);
        calls.SetName(image.Comm);
        Sessions.Join(calls, image, tree, warnings);
        int status = image.ExitStatus;
        var regs = injector.OriginalRegisters.Clone();
        if ((status & 0x7f) == 0)
        {
            regs.PrepareSyscall(trampoline, Registers.Syscalls.ExitGroup, [(ulong)((status >> 8) & 0xff)]);
        }
        else
        {
            int signal = status & 0x7f;
            if (signal is not (Signals.SIGKILL or Signals.SIGSTOP)) // these two have no action to set
                calls.SetSignalAction(signal, default);
            var (_, hard) = calls.GetResourceLimit(RlimitCore);
            calls.SetResourceLimit(RlimitCore, 0, hard); // die by the signal, without a core file
            regs.PrepareSyscall(trampoline, Registers.Syscalls.Tgkill, [(ulong)image.Pid, (ulong)image.Pid, (ulong)signal]);
            child.SetSignalMask(0);
        }
        child.SetRegisters(regs);
        child.Detach();
        var deadline = DateTime.UtcNow.AddSeconds(5);
        while (ProcFs.ReadStat(child.Pid).State != 'Z')
        {
            if (DateTime.UtcNow > deadline)
                throw new CheckpointException($"zombie {image.Pid} did not exit");
            Thread.Sleep(1);
        }
    }
}
