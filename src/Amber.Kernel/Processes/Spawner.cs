using System.Runtime.InteropServices;
using Amber.Kernel.Files;
using Amber.Kernel.Ptrace;
using Amber.Native;

namespace Amber.Kernel.Processes;

/// <summary>
/// Starts processes with posix_spawn (vfork+exec in glibc: safe in a multi-threaded runtime, unlike
/// fork). Processes Amber will trace must not come from System.Diagnostics.Process, whose SIGCHLD
/// handling can reap them behind the tracer's back.
/// </summary>
public static class Spawner
{
    /// <summary>Starts the program; returns its PID (in amber's PID namespace, whichever it is born in).</summary>
    public static int Spawn(SpawnOptions options)
    {
        if (!options.NewPidNamespace && options.PidNamespaceOf == 0 && options.Prepare is null)
            return SpawnHere(options);
        // Where a thread's children are born can be changed only for good: a thread of its own spawns,
        // then ends (amber's other threads go on spawning where they did).
        return DedicatedThread.Run("amber-spawn", () =>
        {
            // Before the PID namespace: what it starts (ip, nft) must not be born in that.
            options.Prepare?.Invoke();
            if (options.NewPidNamespace)
                Namespaces.NewPidNamespaceForChildren();
            else if (options.PidNamespaceOf != 0)
                Namespaces.Enter(options.PidNamespaceOf, NamespaceKind.Pid);
            return SpawnHere(options);
        });
    }

    private static unsafe int SpawnHere(SpawnOptions options)
    {
        var pins = new List<GCHandle>();
        byte* actions = stackalloc byte[Interop.PosixSpawnFileActionsSize * 2];
        byte* attr = stackalloc byte[Interop.PosixSpawnAttrSize * 2];
        Interop.PosixSpawnFileActionsInit(actions);
        Interop.PosixSpawnAttrInit(attr);
        try
        {
            byte* Pin(string s)
            {
                var h = GCHandle.Alloc(NativeString.Utf8Z(s), GCHandleType.Pinned);
                pins.Add(h);
                return (byte*)h.AddrOfPinnedObject();
            }

            foreach (var (fd, source) in options.Inherits)
                Check(Interop.PosixSpawnFileActionsAddDup2(actions, source, fd), "posix_spawn_file_actions_adddup2", options.Path);
            foreach (var (fd, path, openFlags) in options.Opens)
                Check(Interop.PosixSpawnFileActionsAddOpen(actions, fd, Pin(path), openFlags, (int)FileModes.ReadWriteAll), "posix_spawn_file_actions_addopen", path);
            // Only what was asked for crosses over: no fd of ours leaks into the child.
            int firstUnused = options.Inherits.Select(i => i.Fd).Concat(options.Opens.Select(o => o.Fd)).Append(2).Max() + 1;
            Check(Interop.PosixSpawnFileActionsAddClosefrom(actions, firstUnused), "posix_spawn_file_actions_addclosefrom_np", options.Path);
            if (options.WorkingDirectory is { } cwd)
                Check(Interop.PosixSpawnFileActionsAddChdir(actions, Pin(cwd)), "posix_spawn_file_actions_addchdir_np", cwd);

            // The runtime blocks and handles signals of its own; a child starts clean.
            ulong* empty = stackalloc ulong[16];
            ulong* all = stackalloc ulong[16];
            for (int i = 0; i < 16; i++)
            {
                empty[i] = 0;
                all[i] = ulong.MaxValue;
            }
            all[0] &= ~((1UL << (Interop.SIGKILL - 1)) | (1UL << (Interop.SIGSTOP - 1)));
            short flags = Interop.POSIX_SPAWN_SETSIGMASK | Interop.POSIX_SPAWN_SETSIGDEF;
            if (options.NewSession)
                flags |= Interop.POSIX_SPAWN_SETSID;
            Interop.PosixSpawnAttrSetSigmask(attr, empty);
            Interop.PosixSpawnAttrSetSigdefault(attr, all);
            Interop.PosixSpawnAttrSetFlags(attr, flags);

            var argv = new nint[options.Arguments.Count + 2];
            argv[0] = (nint)Pin(options.Path);
            for (int i = 0; i < options.Arguments.Count; i++)
                argv[i + 1] = (nint)Pin(options.Arguments[i]);
            var env = options.Environment ?? CurrentEnvironment();
            var envp = new nint[env.Count + 1];
            for (int i = 0; i < env.Count; i++)
                envp[i] = (nint)Pin(env[i]);

            int pid;
            int rv;
            fixed (nint* pArgv = argv, pEnv = envp)
                rv = Interop.PosixSpawn(&pid, (byte*)argv[0], actions, attr, (byte**)pArgv, (byte**)pEnv);
            if (rv != 0)
                throw new KernelCallException("posix_spawn", options.Path, rv);
            return pid;
        }
        finally
        {
            Interop.PosixSpawnFileActionsDestroy(actions);
            Interop.PosixSpawnAttrDestroy(attr);
            foreach (var h in pins)
                h.Free();
        }
    }

    /// <summary>Waits for a child of ours to end and reaps it.</summary>
    public static WaitStatus Reap(int pid)
    {
        while (true)
        {
            var status = Tracee.WaitAny(pid);
            if (status.IsGone)
                return status;
        }
    }

    /// <summary>Reaps the child if it has ended; false if it still runs.</summary>
    public static unsafe bool TryReap(int pid, out WaitStatus status)
    {
        int raw;
        int rv = Interop.WaitPid(pid, &raw, Interop.WNOHANG | Interop.WALL);
        status = new WaitStatus(pid, raw);
        return rv == pid && status.IsGone;
    }

    /// <summary>
    /// This process's environment as NAME=value, by name, with <paramref name="set"/> in place of its
    /// own values of those names: what a child of amber's starts with.
    /// </summary>
    public static List<string> CurrentEnvironment(params (string Name, string Value)[] set)
    {
        var names = set.Select(s => s.Name).ToHashSet(StringComparer.Ordinal);
        return
        [
            .. System.Environment.GetEnvironmentVariables().Keys.Cast<string>().Where(k => !names.Contains(k)).Order(StringComparer.Ordinal)
                .Select(k => $"{k}={System.Environment.GetEnvironmentVariable(k)}"),
            .. set.Select(s => $"{s.Name}={s.Value}"),
        ];
    }

    public static void Kill(int pid, int signal)
    {
        if (Interop.Kill(pid, signal) < 0 && Marshal.GetLastPInvokeError() != Errnos.ESRCH)
            Errnos.Throw("kill", $"process {pid}");
    }

    /// <summary>Makes this process adopt orphaned descendants (so it can reap restored processes).</summary>
    public static void BecomeSubreaper() =>
        Errnos.Check(Interop.Prctl(Interop.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), "prctl(PR_SET_CHILD_SUBREAPER)", "self");

    private static void Check(int rv, string call, string target)
    {
        if (rv != 0)
            throw new KernelCallException(call, target, rv);
    }
}
