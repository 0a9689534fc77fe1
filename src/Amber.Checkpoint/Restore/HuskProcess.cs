using Amber.Checkpoint.Resources.Memory;
using Amber.Kernel;
using Amber.Kernel.Inject;
using Amber.Kernel.Memory;
using Amber.Kernel.Proc;
using Amber.Kernel.Processes;
using Amber.Kernel.Ptrace;

namespace Amber.Checkpoint.Restore;

/// <summary>
/// Makes the process a restore fills in: a husk is spawned (any PID), a trampoline
/// (code, a scratch page and a table for batches of calls) is mapped into it, and an injected clone3 with set_tid forks
/// it into a process with the saved PID, auto-attached through PTRACE_O_TRACEFORK. The husk is then
/// ended; its clone, stopped at birth, is the new process. It inherits the husk's fds 0.. (amber's
/// stdio and the inherited fds), nothing of libc, and the trampoline at a known address.
/// </summary>
public static class HuskProcess
{
    /// <summary>
    /// The trampoline: a page of code (<see cref="Trampoline.Code"/>), a page of scratch for the calls
    /// injected through it, then the table of its batches of calls (<see cref="SyscallBatch"/>).
    /// </summary>
    public const int TrampolineSize = 2 * Page.Size + BatchSize;

    private const int BatchSize = 64 * Page.Size;

    /// <summary>A batch of calls made through the trampoline at <paramref name="trampoline"/>.</summary>
    public static SyscallBatch Batch(RemoteCalls calls, ulong trampoline) => new(calls, trampoline + 2 * Page.Size, BatchSize);

    /// <summary>Calls injected through the trampoline at <paramref name="trampoline"/>, its second page their scratch.</summary>
    public static RemoteCalls Calls(SyscallInjector injector, RemoteMemory memory, ulong trampoline) =>
        new(injector, memory, trampoline + Page.Size, Page.Size);

    /// <summary>
    /// A child of <paramref name="creator"/>'s with id <paramref name="id"/> (0: any), stopped at birth
    /// and traced, by amber's id for it. In a new PID namespace (<paramref name="inNewPidNamespace"/>)
    /// the id is its id there.
    /// </summary>
    /// <param name="note">Said after the ids when the clone has another: what the child stands for.</param>
    public static Tracee Clone(RemoteCalls creator, int id, bool inNewPidNamespace, string note = "", bool sharedFiles = false, bool sibling = false)
    {
        int returned;
        try
        {
            returned = creator.CloneWithId(id, thread: false, sharedFiles, sibling);
        }
        catch (KernelCallException e) when (e.Errno == Errnos.EEXIST && !inNewPidNamespace)
        {
            throw new CheckpointException($"PID {id} was taken just before the restore could claim it, by {WaitForPid.Holder(id)}");
        }
        // clone3 returns the id in the creator's namespace, the new one's only for a creator inside it;
        // amber's is the fork event's.
        int host = creator.LastChild;
        int got = inNewPidNamespace ? Namespaces.InnerPid(host) : returned;
        if (id != 0 && got != id)
            throw new CheckpointException($"clone3 gave process {got}, not {id}{note}");
        var tracee = Tracee.Adopt(host, host);
        tracee.WaitForStop();
        return tracee;
    }

    /// <param name="pid">The PID the new process gets; 0: any (the forest of a group restore).</param>
    /// <param name="newPidNamespace">The husk makes a new PID namespace, and the process (<paramref name="pid"/>: 1) is its first.</param>
    /// <param name="inHusk">What the husk does before it makes the process (calls into it, and its PID): new mounts, say.</param>
    /// <param name="inheritSources">amber fds placed at fd 3, 4, ... of the new process.</param>
    /// <param name="imageRanges">Address ranges the restored process will use: the trampoline avoids them.</param>
    /// <param name="cgroup">Where the new process (and everything it makes) is born.</param>
    public static (Tracee Process, ulong Trampoline) Create(int pid, IEnumerable<(ulong Start, ulong End)> imageRanges, IReadOnlyList<int> inheritSources, Cgroup? cgroup,
        bool newPidNamespace = false, Action<RemoteCalls, int>? inHusk = null)
    {
        var inherits = inheritSources.Select((source, i) => (3 + i, source)).ToList();
        int huskPid = Spawner.Spawn(new SpawnOptions(Husk.Path, ["amber-husk"]) { Environment = [], Inherits = inherits });
        if (huskPid == pid && !newPidNamespace)
        {
            // The next free PID was the very one to restore (PIDs wrapped): another husk, then let this one go.
            int taken = huskPid;
            huskPid = Spawner.Spawn(new SpawnOptions(Husk.Path, ["amber-husk"]) { Environment = [], Inherits = inherits });
            Spawner.Kill(taken, Signals.SIGKILL);
            Spawner.Reap(taken);
        }
        Tracee? husk = null;
        try
        {
            husk = Tracee.Seize(huskPid, huskPid, PtraceOptions.TraceFork | PtraceOptions.ExitKill);
            husk.WaitForStop();
            cgroup?.Add(huskPid);
            using var memory = new RemoteMemory(huskPid);
            var bootstrap = new SyscallInjector(husk, Husk.SyscallAddress, int3Follows: false);
            var calls = new RemoteCalls(bootstrap, memory, 0, 0);
            var huskRanges = ProcFs.ReadMaps(huskPid).Select(m => (m.Start, m.End));
            ulong trampolineAddress = AddressHoles.Find(imageRanges.Concat(huskRanges), TrampolineSize);
            calls.Mmap(trampolineAddress, TrampolineSize, Mman.ProtRead | Mman.ProtWrite | Mman.ProtExec,
                Mman.MapPrivate | Mman.MapAnonymous | Mman.MapFixedNoReplace);
            memory.Write(trampolineAddress, Trampoline.Code);

            var fork = new SyscallInjector(husk, trampolineAddress, int3Follows: true, bootstrap.OriginalRegisters);
            var forkCalls = Calls(fork, memory, trampolineAddress);
            inHusk?.Invoke(forkCalls, huskPid);
            if (newPidNamespace)
                forkCalls.NewPidNamespaceForChildren();
            return (Clone(forkCalls, pid, newPidNamespace), trampolineAddress);
        }
        finally
        {
            // The husk has done its job; its clone is reparented and stays traced by us.
            Spawner.Kill(huskPid, Signals.SIGKILL);
            husk?.MarkGone();
            Spawner.Reap(huskPid);
        }
    }
}
