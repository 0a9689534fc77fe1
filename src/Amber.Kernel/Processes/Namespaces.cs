using System.Text;
using Amber.Native;

namespace Amber.Kernel.Processes;

/// <summary>The kinds of namespace a group may have of its own, so far.</summary>
public enum NamespaceKind
{
    /// <summary>Host and domain name.</summary>
    Uts,

    /// <summary>System V semaphores, message queues and shared memory, and POSIX message queues.</summary>
    Ipc,

    /// <summary>Network interfaces, addresses, routes, ports, sockets.</summary>
    Net,

    /// <summary>
    /// Process ids: the first process of a new one is its PID 1. Unlike the others, joining or making
    /// one changes only where the thread's later children are born, never the thread itself.
    /// </summary>
    Pid,

    /// <summary>
    /// Mounts. A thread of a process of several threads may make one (unshare gives it a root and working
    /// directory of its own first), and join one only once it has them (<see cref="Namespaces.Enter(int, NamespaceKind)"/>):
    /// a checkpoint reads one through /proc/PID/root and mountinfo, a restore has its single-threaded
    /// husk make one, and an exec helper makes or joins a group's just before it becomes the program.
    /// </summary>
    Mount,
}

/// <summary>
/// Namespaces as a thread sees and changes them. Joining (setns) or making (unshare) a UTS, IPC or
/// network namespace changes the calling thread alone, and what it starts from then on: a checkpoint
/// or a restore does it on its own thread, which ends with it, and an exec helper just before execve.
/// </summary>
public static class Namespaces
{
    /// <summary>Its name under /proc/PID/ns.</summary>
    public static string ProcName(this NamespaceKind kind) => kind switch
    {
        NamespaceKind.Uts => "uts",
        NamespaceKind.Ipc => "ipc",
        NamespaceKind.Net => "net",
        NamespaceKind.Pid => "pid",
        NamespaceKind.Mount => "mnt",
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>The kind named as /proc/PID/ns names it (uts, ipc, net, pid, mnt); null for another.</summary>
    public static NamespaceKind? Parse(string name) => name switch
    {
        "uts" => NamespaceKind.Uts,
        "ipc" => NamespaceKind.Ipc,
        "net" => NamespaceKind.Net,
        "pid" => NamespaceKind.Pid,
        "mnt" => NamespaceKind.Mount,
        _ => null,
    };

    private static int CloneFlag(NamespaceKind kind) => kind switch
    {
        NamespaceKind.Uts => Interop.CLONE_NEWUTS,
        NamespaceKind.Ipc => Interop.CLONE_NEWIPC,
        NamespaceKind.Net => Interop.CLONE_NEWNET,
        NamespaceKind.Pid => Interop.CLONE_NEWPID,
        NamespaceKind.Mount => Interop.CLONE_NEWNS,
        _ => throw new ArgumentOutOfRangeException(nameof(kind)),
    };

    /// <summary>Which namespace of that kind process <paramref name="pid"/> is in ("uts:[4026531838]"); null if it is gone.</summary>
    public static string? Of(int pid, NamespaceKind kind) => Link($"/proc/{pid}/ns/{kind.ProcName()}");

    /// <summary>Which namespace of that kind the calling thread is in.</summary>
    public static string OfThisThread(NamespaceKind kind) =>
        Link($"/proc/thread-self/ns/{kind.ProcName()}") ?? throw new IOException($"/proc/thread-self/ns/{kind.ProcName()} cannot be read");

    /// <summary>Which namespace of that kind this process (its main thread) is in.</summary>
    public static string OfThisProcess(NamespaceKind kind) =>
        Link($"/proc/self/ns/{kind.ProcName()}") ?? throw new IOException($"/proc/self/ns/{kind.ProcName()} cannot be read");

    /// <summary>
    /// The calling thread joins process <paramref name="pid"/>'s namespace of that kind (for
    /// <see cref="NamespaceKind.Pid"/>: its children are born in it from then on).
    /// </summary>
    public static void Enter(int pid, NamespaceKind kind)
    {
        string path = $"/proc/{pid}/ns/{kind.ProcName()}";
        using var ns = Files.HeldFile.Open(path, Files.OpenFlags.ReadOnly, 0);
        // setns refuses a mount namespace to a thread that shares its root and working directory (EINVAL).
        // Joining one moves them to its root: a caller that needs its working directory changes back to it.
        if (kind == NamespaceKind.Mount)
            Errnos.Check(Interop.Unshare(Interop.CLONE_FS), "unshare(CLONE_FS)", $"joining process {pid}'s mount namespace");
        Errnos.Check(Interop.Setns(ns.Fd, CloneFlag(kind)), $"setns({kind.ProcName()})", $"process {pid}");
    }

    /// <summary>The calling thread's namespace of that kind, held open (to come back to it, or name it to another).</summary>
    public static Files.HeldFile Hold(NamespaceKind kind) =>
        Files.HeldFile.Open($"/proc/thread-self/ns/{kind.ProcName()}", Files.OpenFlags.ReadOnly, 0);

    /// <summary>The calling thread joins the namespace <paramref name="ns"/> holds (<see cref="Hold"/>).</summary>
    public static void Enter(Files.HeldFile ns, NamespaceKind kind, string what) =>
        Errnos.Check(Interop.Setns(ns.Fd, CloneFlag(kind)), $"setns({kind.ProcName()})", what);

    /// <summary>
    /// The calling thread gets new namespaces of these kinds, set up as given: a new UTS one with
    /// <paramref name="hostName"/> (and <paramref name="domainName"/>, unless unset: empty or
    /// "(none)"), a new network one with its loopback up if <paramref name="loopbackUp"/> (a new one
    /// has it down), a new mount one a copy of the thread's, every mount of it made private (nothing
    /// mounted on either side is seen on the other).
    /// </summary>
    public static void Make(IReadOnlyCollection<NamespaceKind> kinds, string? hostName = null, string? domainName = null, bool loopbackUp = true)
    {
        // A thread is never in the PID namespace it makes: its first child is (Spawner, SpawnOptions.PidNamespace).
        if (kinds.Contains(NamespaceKind.Pid))
            throw new ArgumentException("a PID namespace is made for a new process, not for a thread", nameof(kinds));
        int flags = kinds.Aggregate(0, (f, k) => f | CloneFlag(k));
        if (flags == 0)
            return;
        Errnos.Check(Interop.Unshare(flags), "unshare", string.Join(",", kinds.Select(k => k.ProcName())));
        if (kinds.Contains(NamespaceKind.Mount))
            Files.Mounts.MakeAllPrivate();
        if (kinds.Contains(NamespaceKind.Net) && loopbackUp)
            BringUp("lo");
        if (kinds.Contains(NamespaceKind.Uts) && hostName is not null)
            SetHostName(hostName);
        if (kinds.Contains(NamespaceKind.Uts) && domainName is { Length: > 0 } and not "(none)")
            SetDomainName(domainName);
    }

    /// <summary>The host name of the calling thread's UTS namespace.</summary>
    public static unsafe string HostName()
    {
        byte* name = stackalloc byte[UtsLength];
        Errnos.Check(Interop.Gethostname(name, UtsLength), "gethostname", "amber");
        return UtsString(name);
    }

    /// <summary>The (NIS) domain name of the calling thread's UTS namespace; "(none)" when unset.</summary>
    public static unsafe string DomainName()
    {
        byte* name = stackalloc byte[UtsLength];
        Errnos.Check(Interop.Getdomainname(name, UtsLength), "getdomainname", "amber");
        return UtsString(name);
    }

    /// <summary>Sets the host name of the calling thread's UTS namespace.</summary>
    public static unsafe void SetHostName(string name)
    {
        fixed (byte* b = UtsBytes(name, "host name"))
            Errnos.Check(Interop.Sethostname(b, (nuint)Encoding.UTF8.GetByteCount(name)), "sethostname", name);
    }

    /// <summary>Sets the domain name of the calling thread's UTS namespace.</summary>
    public static unsafe void SetDomainName(string name)
    {
        fixed (byte* b = UtsBytes(name, "domain name"))
            Errnos.Check(Interop.Setdomainname(b, (nuint)Encoding.UTF8.GetByteCount(name)), "setdomainname", name);
    }

    /// <summary>Whether interface <paramref name="name"/> of the calling thread's network namespace is up.</summary>
    public static bool IsUp(string name) => (InterfaceFlags(name, set: null) & Interop.IFF_UP) != 0;

    /// <summary>Brings interface <paramref name="name"/> of the calling thread's network namespace up (loopback, in a new one).</summary>
    public static void BringUp(string name) => InterfaceFlags(name, set: Interop.IFF_UP);

    /// <summary>An interface's flags (SIOCGIFFLAGS), or, with <paramref name="set"/>, those flags added (SIOCSIFFLAGS).</summary>
    private static unsafe short InterfaceFlags(string name, short? set)
    {
        // A socket of this thread's network namespace: the ioctls act on that namespace's interfaces.
        int socket = Errnos.Check(Interop.Socket(Interop.AF_INET, Interop.SOCK_DGRAM | Interop.O_CLOEXEC, 0), "socket(AF_INET)", "amber");
        try
        {
            byte* request = stackalloc byte[Interop.IfreqSize];
            new Span<byte>(request, Interop.IfreqSize).Clear();
            Encoding.ASCII.GetBytes(name.AsSpan(0, Math.Min(name.Length, 15)), new Span<byte>(request, 16));
            Errnos.Check(Interop.Ioctl(socket, Interop.SIOCGIFFLAGS, request), "ioctl(SIOCGIFFLAGS)", $"interface {name}");
            short flags = *(short*)(request + 16);
            if (set is short add && (flags & add) != add)
            {
                *(short*)(request + 16) = flags |= add;
                Errnos.Check(Interop.Ioctl(socket, Interop.SIOCSIFFLAGS, request), "ioctl(SIOCSIFFLAGS)", $"interface {name}");
            }
            return flags;
        }
        finally
        {
            Interop.Close(socket);
        }
    }

    /// <summary>
    /// The first process other than <paramref name="except"/> in one of <paramref name="namespaces"/>
    /// (each as <see cref="Of"/> names it), and in which kind: one a checkpoint would take the
    /// namespace from. Null if none. One pass over every process of the machine.
    /// </summary>
    public static (int Pid, NamespaceKind Kind)? FirstOtherIn(IReadOnlyDictionary<NamespaceKind, string> namespaces, IReadOnlySet<int> except)
    {
        foreach (int pid in Proc.ProcFs.ListProcesses())
        {
            if (except.Contains(pid))
                continue;
            foreach (var (kind, ns) in namespaces)
            {
                if (Of(pid, kind) == ns)
                    return (pid, kind);
            }
        }
        return null;
    }

    /// <summary>
    /// Process (or thread) <paramref name="pid"/>'s id in its own PID namespace, the innermost (the
    /// last NSpid of its status): the id it has for itself and its namespace's other processes.
    /// </summary>
    public static int InnerPid(int pid) => Proc.ProcFs.ReadStatus(pid).NsPids is [.., int inner] ? inner : pid;

    /// <summary>The calling thread's later children are born in a new PID namespace, the first one as its PID 1.</summary>
    public static void NewPidNamespaceForChildren() =>
        Errnos.Check(Interop.Unshare(Interop.CLONE_NEWPID), "unshare", "pid");

    /// <summary>__NEW_UTS_LEN (64) and its NUL.</summary>
    private const int UtsLength = 65;

    private static unsafe string UtsString(byte* name)
    {
        var bytes = new ReadOnlySpan<byte>(name, UtsLength);
        int end = bytes.IndexOf((byte)0);
        return Encoding.UTF8.GetString(bytes[..(end < 0 ? UtsLength - 1 : end)]);
    }

    /// <summary>The name's bytes, with a NUL after them (fixed needs an array that is not empty).</summary>
    private static byte[] UtsBytes(string name, string what)
    {
        int length = Encoding.UTF8.GetByteCount(name);
        if (length > UtsLength - 1)
            throw new ArgumentException($"the {what} '{name}' is longer than {UtsLength - 1} bytes", nameof(name));
        var bytes = new byte[length + 1];
        Encoding.UTF8.GetBytes(name, bytes);
        return bytes;
    }

    private static string? Link(string path)
    {
        try
        {
            return new FileInfo(path).LinkTarget;
        }
        catch (IOException)
        {
            return null;
        }
        catch (UnauthorizedAccessException)
        {
            return null;
        }
    }
}
