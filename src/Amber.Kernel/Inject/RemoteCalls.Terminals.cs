using Amber.Native;

namespace Amber.Kernel.Inject;

/// <summary>What only a process itself can do with a terminal: take it as its session's controlling terminal, pick its foreground group.</summary>
public sealed partial class RemoteCalls
{
    /// <summary>N of /dev/pts/N for a pseudo-terminal master the process holds (TIOCGPTN).</summary>
    public int PtyIndex(int master)
    {
        Call("ioctl(TIOCGPTN)", SyscallNumbers.Ioctl, (ulong)master, Interop.TIOCGPTN, Scratch);
        return Memory.Read<int>(Scratch);
    }

    /// <summary>Makes the terminal of <paramref name="fd"/> the controlling terminal of the process's session (TIOCSCTTY: a session leader without one).</summary>
    public void TakeControllingTerminal(int fd) => Call("ioctl(TIOCSCTTY)", SyscallNumbers.Ioctl, (ulong)fd, Interop.TIOCSCTTY, 0);

    /// <summary>Makes <paramref name="group"/> the foreground process group of the process's controlling terminal, which <paramref name="fd"/> is (TIOCSPGRP).</summary>
    public void SetForegroundGroup(int fd, int group)
    {
        Memory.Write(Scratch, group);
        Call($"ioctl(TIOCSPGRP, {group})", SyscallNumbers.Ioctl, (ulong)fd, Interop.TIOCSPGRP, Scratch);
    }
}
