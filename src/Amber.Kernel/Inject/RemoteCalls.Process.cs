using System.Text;
using Amber.Native;

namespace Amber.Kernel.Inject;

/// <summary>The mm fields PR_SET_MM_MAP sets in one call (the one that needs no CAP_SYS_RESOURCE).</summary>
public sealed record MmLayout(
    ulong StartCode, ulong EndCode, ulong StartData, ulong EndData, ulong StartBrk, ulong Brk, ulong StartStack,
    ulong ArgStart, ulong ArgEnd, ulong EnvStart, ulong EnvEnd);

public sealed partial class RemoteCalls
{
    /// <summary>prctl(PR_SET_MM, PR_SET_MM_MAP): brk, args, env, auxv and /proc/PID/exe in one call.</summary>
    public void SetMmMap(MmLayout layout, ReadOnlySpan<byte> auxv, int exeFd)
    {
        int auxvOffset = PrctlMmMap.Size;
        if (auxvOffset + auxv.Length > ScratchSize)
            throw new ArgumentException($"auxv of {auxv.Length} bytes does not fit the scratch area");
        Memory.Write(Scratch + (ulong)auxvOffset, auxv);
        Memory.Write(Scratch, new PrctlMmMap
        {
            start_code = layout.StartCode, end_code = layout.EndCode, start_data = layout.StartData, end_data = layout.EndData,
            start_brk = layout.StartBrk, brk = layout.Brk, start_stack = layout.StartStack,
            arg_start = layout.ArgStart, arg_end = layout.ArgEnd, env_start = layout.EnvStart, env_end = layout.EnvEnd,
            auxv = Scratch + (ulong)auxvOffset, auxv_size = (uint)auxv.Length, exe_fd = (uint)exeFd,
        });
        Call("prctl(PR_SET_MM_MAP)", SyscallNumbers.Prctl, Interop.PR_SET_MM, Interop.PR_SET_MM_MAP, Scratch, PrctlMmMap.Size);
    }

    public void SetName(string comm)
    {
        var bytes = new byte[16];
        Encoding.UTF8.GetBytes(comm.AsSpan(0, Math.Min(comm.Length, 15)), bytes);
        Memory.Write(Scratch, bytes);
        Call("prctl(PR_SET_NAME)", SyscallNumbers.Prctl, Interop.PR_SET_NAME, Scratch);
    }

    public void SetPersonality(ulong persona) => Call("personality", SyscallNumbers.Personality, persona);

    /// <summary>clone3 with set_tid = <paramref name="id"/> (0: whatever PID the kernel gives): a child or a thread. Returns its id.</summary>
    /// <param name="sharedFiles">A process (not a thread) that shares the caller's fd table (CLONE_FILES).</param>
    /// <param name="sibling">A child of the caller's parent, not of the caller (CLONE_PARENT): born into the caller's session.</param>
    public int CloneWithId(int id, bool thread, bool sharedFiles = false, bool sibling = false)
    {
        ulong setTid = Scratch + CloneArgs.Size;
        Memory.Write(setTid, id);
        ulong flags = thread
            ? CloneArgs.CLONE_VM | CloneArgs.CLONE_FS | CloneArgs.CLONE_FILES | CloneArgs.CLONE_SIGHAND | CloneArgs.CLONE_THREAD | CloneArgs.CLONE_SYSVSEM
            : (sharedFiles ? CloneArgs.CLONE_FILES : 0) | (sibling ? CloneArgs.CLONE_PARENT : 0);
        Memory.Write(Scratch, new CloneArgs
        {
            // With CLONE_PARENT the exit signal is the caller's own (clone3 wants 0 here).
            flags = flags, exit_signal = thread || sibling ? 0UL : (ulong)Interop.SIGCHLD, set_tid = id == 0 ? 0 : setTid, set_tid_size = id == 0 ? 0UL : 1,
        });
        return (int)Call(id == 0 ? "clone3" : $"clone3(set_tid={id})", SyscallNumbers.Clone3, Scratch, CloneArgs.Size);
    }

    public void NewSession() => Call("setsid", SyscallNumbers.Setsid);

    /// <summary>
    /// unshare(CLONE_NEWPID): the tracee's later children are born in a new PID namespace, the first as
    /// its PID 1, while it stays where it is. clone3 then returns their ids in the tracee's namespace, not
    /// in theirs: <see cref="SyscallInjector.NewChildren"/> has them as amber sees them.
    /// </summary>
    public void NewPidNamespaceForChildren() => Call("unshare(CLONE_NEWPID)", SyscallNumbers.Unshare, (ulong)Interop.CLONE_NEWPID);

    /// <summary>The tracee's last child (or thread) made by an injected clone, as amber sees it: its PID (TID) in amber's namespace.</summary>
    public int LastChild => Injector.NewChildren is [.., int last] ? last : throw new InvalidOperationException("no child was made by an injected clone");

    public int GetDumpable() => (int)Call("prctl(PR_GET_DUMPABLE)", SyscallNumbers.Prctl, Interop.PR_GET_DUMPABLE);

    public void SetDumpable(int value) => Call("prctl(PR_SET_DUMPABLE)", SyscallNumbers.Prctl, Interop.PR_SET_DUMPABLE, (ulong)value);

    /// <summary>
    /// Supplementary groups, then gids, then uids: the order in which each step is still allowed
    /// (changing groups and gids needs the privilege that setting a non-root uid gives up).
    /// </summary>
    public void SetCredentials(IReadOnlyList<uint> uids, IReadOnlyList<uint> gids, IReadOnlyList<uint> groups)
    {
        var bytes = new byte[groups.Count * 4];
        for (int i = 0; i < groups.Count; i++)
            System.Buffers.Binary.BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(i * 4), groups[i]);
        if (bytes.Length > ScratchSize)
            throw new ArgumentException($"{groups.Count} supplementary groups do not fit the scratch area");
        Memory.Write(Scratch, bytes);
        Call("setgroups", SyscallNumbers.Setgroups, (ulong)groups.Count, Scratch);
        Call("setresgid", SyscallNumbers.Setresgid, gids[0], gids[1], gids[2]);
        Call("setresuid", SyscallNumbers.Setresuid, uids[0], uids[1], uids[2]);
    }

    /// <summary>
    /// setfsuid and setfsgid (after setresuid/setresgid, which reset them to the effective ids). They
    /// report no error: the result is read back by the caller from /proc.
    /// </summary>
    public void SetFileSystemIds(uint fsuid, uint fsgid)
    {
        Injector.Call(SyscallNumbers.Setfsgid, fsgid);
        Injector.Call(SyscallNumbers.Setfsuid, fsuid);
    }

    public int GetParentDeathSignal()
    {
        Memory.Write(Scratch, 0);
        Call("prctl(PR_GET_PDEATHSIG)", SyscallNumbers.Prctl, Interop.PR_GET_PDEATHSIG, Scratch);
        return Memory.Read<int>(Scratch);
    }

    public void SetParentDeathSignal(int signal) =>
        Call("prctl(PR_SET_PDEATHSIG)", SyscallNumbers.Prctl, Interop.PR_SET_PDEATHSIG, (ulong)signal);

    public void NewProcessGroup() => Call("setpgid", SyscallNumbers.Setpgid, 0, 0);

    public void JoinProcessGroup(int pgid) => Call($"setpgid(0, {pgid})", SyscallNumbers.Setpgid, 0, (ulong)pgid);

    /// <summary>Takes every pending instance of <paramref name="signal"/> off the queue (rt_sigtimedwait, zero timeout).</summary>
    public void DiscardPendingSignal(int signal)
    {
        Memory.Write(Scratch, 1UL << (signal - 1));
        Memory.Write(Scratch + 8, 0L);
        Memory.Write(Scratch + 16, 0L);
        while (Injector.Call(SyscallNumbers.RtSigtimedwait, Scratch, 0, Scratch + 8, 8) == signal)
        {
        }
    }

    /// <summary>membarrier(2) commands the restore needs (include/uapi/linux/membarrier.h).</summary>
    public static class Membarrier
    {
        public const int RegisterGlobalExpedited = 1 << 2;
        public const int PrivateExpedited = 1 << 3;
        public const int RegisterPrivateExpedited = 1 << 4;
        public const int RegisterPrivateExpeditedSyncCore = 1 << 6;
        public const int RegisterPrivateExpeditedRseq = 1 << 8;
        public const int GetRegistrations = 1 << 9;

        /// <summary>Every registration, in the order a restore makes them.</summary>
        public static readonly int[] Registrations =
            [RegisterGlobalExpedited, RegisterPrivateExpedited, RegisterPrivateExpeditedSyncCore, RegisterPrivateExpeditedRseq];
    }

    /// <summary>
    /// The membarrier registrations of the process (MEMBARRIER_CMD_GET_REGISTRATIONS, Linux 6.3).
    /// Before 6.3 only the private expedited one can be told, by using it: it fails with EPERM unless registered.
    /// </summary>
    public int GetMembarrierRegistrations()
    {
        long mask = Injector.Call(SyscallNumbers.Membarrier, Membarrier.GetRegistrations, 0, 0);
        if (mask >= 0)
            return (int)mask;
        if (mask == -Errnos.ENOSYS)
            return 0;
        return Injector.Call(SyscallNumbers.Membarrier, Membarrier.PrivateExpedited, 0, 0) == 0 ? Membarrier.RegisterPrivateExpedited : 0;
    }

    public void RegisterMembarrier(int command) => Call($"membarrier({command})", SyscallNumbers.Membarrier, (ulong)command, 0, 0);
}
