using System.Buffers.Binary;
using System.Runtime.ExceptionServices;
using Amber.Native;

namespace Amber.Kernel.Files;

/// <summary>
/// The ready list of another process's epoll set, from outside: what its next epoll_wait reports. A
/// level-triggered watch whose file is ready is always on it; an edge-triggered one only between an
/// event of its file and the epoll_wait that reports it, which nothing in /proc shows. It is learnt by
/// taking the list out (epoll_wait on amber's copy of the set: the same set; what it reports of an
/// edge-triggered or one-shot watch leaves it) and put back watch by watch (EPOLL_CTL_MOD queues a
/// watch whose file is ready). A set knows a watch by its file and the fd number it was added under,
/// so the MOD is made from a thread of amber's with an fd table of its own, the file put at that
/// number there for it (amber's own fds are not touched).
/// </summary>
public static class EpollReadiness
{
    /// <summary>A watch of the set.</summary>
    /// <param name="Fd">The number its file was added under.</param>
    /// <param name="HeldAs">The process's fd that is that file now (<paramref name="Fd"/>, unless closed or reused since).</param>
    /// <param name="Events">Its events, EPOLLET and EPOLLONESHOT included.</param>
    /// <param name="Data">Its data, as epoll_wait reports it.</param>
    public readonly record struct Watch(int Fd, int HeldAs, uint Events, ulong Data);

    /// <summary>An edge-triggered watch: on the ready list only until reported.</summary>
    public static bool EdgeTriggered(uint events) => (events & Interop.EPOLLET) != 0;

    /// <summary>A one-shot watch: reported once, then disarmed until modified.</summary>
    public static bool OneShot(uint events) => (events & Interop.EPOLLONESHOT) != 0;

    /// <summary>An exclusive watch, which EPOLL_CTL_MOD refuses.</summary>
    public static bool Exclusive(uint events) => (events & Interop.EPOLLEXCLUSIVE) != 0;

    /// <summary>
    /// The data of the watches on the set's ready list with their files ready, the list left as it was:
    /// the edge-triggered and one-shot ones taken out with it are put back. The data of
    /// <paramref name="watches"/> (every watch of the set) must tell them apart.
    /// </summary>
    /// <exception cref="KernelCallException">The process, the set or a watched file is gone, or a MOD is refused.</exception>
    public static HashSet<ulong> Read(int pid, int epollFd, IReadOnlyList<Watch> watches)
    {
        var ready = TakeReady(pid, epollFd, watches.Count);
        Rearm(pid, epollFd, [.. watches.Where(w => ready.Contains(w.Data) && (EdgeTriggered(w.Events) || OneShot(w.Events)))]);
        return ready;
    }

    /// <summary>
    /// Makes the set's ready list hold only what it should: everything taken out (the level-triggered
    /// watches go back by themselves), then <paramref name="rearm"/> modified back (each queued if its
    /// file is ready). A set restored has every watch whose file is ready on its list, edge-triggered
    /// ones included, which had reported that readiness before the checkpoint.
    /// </summary>
    /// <exception cref="KernelCallException">The process, the set or a watched file is gone, or a MOD is refused.</exception>
    public static void Settle(int pid, int epollFd, int watches, IReadOnlyList<Watch> rearm)
    {
        TakeReady(pid, epollFd, watches);
        Rearm(pid, epollFd, rearm);
    }

    /// <summary>epoll_wait on amber's copy of the set, until it has given every watch it holds.</summary>
    private static unsafe HashSet<ulong> TakeReady(int pid, int epollFd, int watches)
    {
        using var set = ProcessFiles.GetFd(pid, epollFd);
        int max = Math.Clamp(watches, 1, 1024);
        var events = new byte[max * Interop.EpollEventSize];
        var ready = new HashSet<ulong>();
        // Level-triggered watches come back to the list's end as they are reported: a few rounds more than
        // the watches need if nothing came back is enough to have seen every other one once.
        for (int round = 0; round <= watches / max + 1; round++)
        {
            int n;
            fixed (byte* e = events)
                n = Errnos.Check(Interop.EpollWait(set.Fd, e, max, 0), "epoll_wait", $"epoll fd {epollFd} of process {pid}");
            for (int i = 0; i < n; i++)
                ready.Add(BinaryPrimitives.ReadUInt64LittleEndian(events.AsSpan(i * Interop.EpollEventSize + 4)));
            if (n < max)
                break;
        }
        return ready;
    }

    /// <summary>EPOLL_CTL_MOD of each watch with its own events, from a thread whose fd table is its own.</summary>
    private static void Rearm(int pid, int epollFd, IReadOnlyList<Watch> watches)
    {
        if (watches.Count == 0)
            return;
        ExceptionDispatchInfo? failure = null;
        var thread = new Thread(() =>
        {
            try
            {
                RearmInPrivateTable(pid, epollFd, watches);
            }
            catch (Exception e)
            {
                failure = ExceptionDispatchInfo.Capture(e);
            }
        })
        { IsBackground = true, Name = "amber-epoll-rearm" };
        thread.Start();
        thread.Join();
        failure?.Throw();
    }

    /// <summary>Runs on a thread that ends right after: the fd table it unshares (and every fd in it) goes with it.</summary>
    private static unsafe void RearmInPrivateTable(int pid, int epollFd, IReadOnlyList<Watch> watches)
    {
        string target = $"epoll fd {epollFd} of process {pid}";
        Errnos.Check(Interop.Unshare(Interop.CLONE_FILES), "unshare(CLONE_FILES)", "a thread of amber's");
        // Everything of amber's here above the watches' numbers, which the files are put at.
        int floor = watches.Max(w => w.Fd) + 1;
        int opened = Errnos.Check(Interop.PidfdOpen(pid, 0), "pidfd_open", $"process {pid}");
        int pidfd = Errnos.Check(Interop.Fcntl(opened, Interop.F_DUPFD_CLOEXEC, floor), "fcntl(F_DUPFD_CLOEXEC)", $"process {pid}");
        Interop.Close(opened);
        int set = Above(Interop.PidfdGetfd(pidfd, epollFd, 0), floor, target);
        Span<byte> ev = stackalloc byte[Interop.EpollEventSize];
        foreach (var watch in watches)
        {
            // One at a time: two watches may know two files under one number.
            int file = Above(Interop.PidfdGetfd(pidfd, watch.HeldAs, 0), floor, $"fd {watch.HeldAs} of process {pid}");
            Errnos.Check(Interop.Dup3(file, watch.Fd, Interop.O_CLOEXEC), "dup3", "a thread of amber's own fd table");
            BinaryPrimitives.WriteUInt32LittleEndian(ev, watch.Events);
            BinaryPrimitives.WriteUInt64LittleEndian(ev[4..], watch.Data);
            fixed (byte* e = ev)
                Errnos.Check(Interop.EpollCtl(set, Interop.EPOLL_CTL_MOD, watch.Fd, e), $"epoll_ctl(MOD, {watch.Fd})", target);
            Interop.Close(file);
        }
    }

    /// <summary>A copy of <paramref name="fd"/> (just got from pidfd_getfd) at <paramref name="floor"/> or above, out of the watches' numbers.</summary>
    private static int Above(int fd, int floor, string what)
    {
        Errnos.Check(fd, "pidfd_getfd", what);
        int moved = Errnos.Check(Interop.Fcntl(fd, Interop.F_DUPFD_CLOEXEC, floor), "fcntl(F_DUPFD_CLOEXEC)", what);
        Interop.Close(fd);
        return moved;
    }
}
