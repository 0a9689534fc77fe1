using System.Buffers.Binary;
using Amber.Native;

namespace Amber.Kernel.Inject;

public sealed partial class RemoteCalls
{
    public int EventFd(uint initialValue, bool semaphore, int statusFlags) =>
        (int)Call("eventfd2", SyscallNumbers.Eventfd2, initialValue, (ulong)((statusFlags & Interop.O_NONBLOCK) | (semaphore ? Interop.EFD_SEMAPHORE : 0)));

    public int TimerFd(int clockId, int statusFlags) =>
        (int)Call("timerfd_create", SyscallNumbers.TimerfdCreate, (ulong)clockId, (ulong)(statusFlags & Interop.O_NONBLOCK));

    /// <summary>Arms a timerfd: the first expiration <paramref name="valueNs"/> from now (relative), then every interval.</summary>
    public void ArmTimerFd(int fd, long intervalNs, long valueNs)
    {
        WriteTimerSpec(intervalNs, valueNs);
        Call("timerfd_settime", SyscallNumbers.TimerfdSettime, (ulong)fd, 0, Scratch, 0);
    }

    /// <summary>Expirations not yet read (TFD_IOC_SET_TICKS, a checkpoint/restore ioctl).</summary>
    public void SetTimerFdTicks(int fd, ulong ticks)
    {
        Memory.Write(Scratch, ticks);
        Call("ioctl(TFD_IOC_SET_TICKS)", SyscallNumbers.Ioctl, (ulong)fd, Interop.TFD_IOC_SET_TICKS, Scratch);
    }

    public int SignalFd(ulong mask, int statusFlags)
    {
        Memory.Write(Scratch, mask);
        return (int)Call("signalfd4", SyscallNumbers.Signalfd4, unchecked((ulong)-1L), Scratch, 8, (ulong)(statusFlags & Interop.O_NONBLOCK));
    }

    public int EpollCreate() => (int)Call("epoll_create1", SyscallNumbers.EpollCreate1, 0);

    public void EpollAdd(int epoll, int fd, uint events, ulong data) => EpollControl(epoll, Interop.EPOLL_CTL_ADD, fd, events, data);

    public void EpollModify(int epoll, int fd, uint events, ulong data) => EpollControl(epoll, Interop.EPOLL_CTL_MOD, fd, events, data);

    private void EpollControl(int epoll, int op, int fd, uint events, ulong data)
    {
        // struct epoll_event is packed on x86_64: u32 events, u64 data.
        Span<byte> ev = stackalloc byte[12];
        BinaryPrimitives.WriteUInt32LittleEndian(ev, events);
        BinaryPrimitives.WriteUInt64LittleEndian(ev[4..], data);
        Memory.Write(Scratch, ev);
        Call($"epoll_ctl({(op == Interop.EPOLL_CTL_ADD ? "ADD" : "MOD")}, {fd})", SyscallNumbers.EpollCtl, (ulong)epoll, (ulong)op, (ulong)fd, Scratch);
    }

    /// <summary>epoll_wait with no timeout: the number of events that were ready (taken, as a program's wait takes them).</summary>
    public int EpollTakeReady(int epoll, int maxEvents) =>
        (int)Call("epoll_wait", SyscallNumbers.EpollWait, (ulong)epoll, Scratch, (ulong)Math.Min(maxEvents, ScratchSize / 12), 0);

    public int Socket(int family, int type, int protocol, int statusFlags) =>
        (int)Call("socket", SyscallNumbers.Socket, (ulong)family, (ulong)(type | (statusFlags & Interop.O_NONBLOCK)), (ulong)protocol);

    /// <summary>socketpair(AF_UNIX, type): two connected sockets.</summary>
    public (int First, int Second) SocketPair(int type)
    {
        Call("socketpair", SyscallNumbers.Socketpair, Interop.AF_UNIX, (ulong)type, 0, Scratch);
        return (Memory.Read<int>(Scratch), Memory.Read<int>(Scratch + 4));
    }

    public void SetSocketOption(int fd, int level, int name, int value)
    {
        Memory.Write(Scratch, value);
        Call($"setsockopt({level}, {name})", SyscallNumbers.Setsockopt, (ulong)fd, (ulong)level, (ulong)name, Scratch, sizeof(int));
    }

    public void Bind(int fd, ReadOnlySpan<byte> address)
    {
        Memory.Write(Scratch, address);
        Call("bind", SyscallNumbers.Bind, (ulong)fd, Scratch, (ulong)address.Length);
    }

    /// <summary>connect(2) to a unix address (a listening socket outside the process).</summary>
    public void Connect(int fd, ReadOnlySpan<byte> address)
    {
        Memory.Write(Scratch, address);
        Call("connect", SyscallNumbers.Connect, (ulong)fd, Scratch, (ulong)address.Length);
    }

    public void Listen(int fd, int backlog) => Call("listen", SyscallNumbers.Listen, (ulong)fd, (ulong)backlog);

    /// <summary>unlink(2); false when there was nothing to remove.</summary>
    public bool Unlink(string path)
    {
        ulong p = WriteString(path);
        long rv = Injector.Call(SyscallNumbers.Unlink, p);
        if (rv == -Errnos.ENOENT)
            return false;
        if (rv < 0)
            throw new KernelCallException($"unlink({path}) (injected)", Injector.Thread.Name, (int)-rv);
        return true;
    }
}
