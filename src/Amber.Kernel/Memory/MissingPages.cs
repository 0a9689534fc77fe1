using System.Runtime.InteropServices;
using Amber.Kernel.Inject;
using Amber.Native;

namespace Amber.Kernel.Memory;

/// <summary>What a process whose missing pages are served did (a userfaultfd message).</summary>
public enum UserfaultKind
{
    /// <summary>A thread (or the kernel for it) touched a page that is not there: <see cref="UserfaultEvent.Address"/>; it waits until the page is.</summary>
    PageFault,

    /// <summary>It forked: <see cref="UserfaultEvent.ForkFd"/> is a userfaultfd of the child's memory, now amber's.</summary>
    Fork,

    /// <summary>mremap moved [Address, Address + Length) to <see cref="UserfaultEvent.To"/>.</summary>
    Remap,

    /// <summary>madvise dropped [Address, Address + Length) (MADV_DONTNEED, MADV_REMOVE): it reads as zero from now on.</summary>
    Remove,

    /// <summary>[Address, Address + Length) was unmapped.</summary>
    Unmap,
}

/// <param name="Address">The page touched; or the start of the range moved, dropped or unmapped.</param>
/// <param name="To">Remap: where the range is now.</param>
/// <param name="Length">Remap, Remove, Unmap: the range's length.</param>
/// <param name="ForkFd">Fork: the child's userfaultfd (an fd of amber, to adopt with <see cref="MissingPages.Adopt"/>).</param>
public readonly record struct UserfaultEvent(UserfaultKind Kind, ulong Address, ulong To = 0, ulong Length = 0, int ForkFd = -1);

/// <summary>
/// How far a copy into the process got: <see cref="Done"/> bytes of the range are there (placed now,
/// or there already). <see cref="Again"/>: the process's memory layout is changing (a fork, an mremap,
/// an munmap waits for its message to be read): read its events, then go on from Done.
/// <see cref="Unmapped"/>: the page at Done is in no registered mapping now: the process moved or
/// unmapped it. While the message saying so is unread, copies are told Again; but a copy that waited
/// for the mapping's lock through the change itself finds it gone, and the message comes after: the
/// pages are not lost, they are where it will say.
/// <see cref="Gone"/>: the process's memory is gone (it exited or exec'd): nothing can go there any more.
/// </summary>
public readonly record struct FillOutcome(ulong Done, bool Again, bool Gone, bool Unmapped = false);

/// <summary>
/// Missing pages of another process served from here (userfaultfd in missing mode, docs/kernel.md
/// row 4a): a userfaultfd made inside the process (injected) and copied here, its own descriptor
/// closed again. Registered memory that the process (or the kernel on its behalf) touches before its
/// page is placed waits for <see cref="Copy"/> or <see cref="Zero"/>. Fork, mremap, madvise and munmap
/// of registered memory are told (<see cref="ReadEvents"/>) so that the server keeps track of where
/// each page now belongs. Closing the last copy ends it all: whatever is still missing then reads as
/// zero — so a server may close only once everything it holds has been placed.
/// </summary>
public sealed class MissingPages : IDisposable
{
    private const ulong Features = Interop.UFFD_FEATURE_EVENT_FORK | Interop.UFFD_FEATURE_EVENT_REMAP
        | Interop.UFFD_FEATURE_EVENT_REMOVE | Interop.UFFD_FEATURE_EVENT_UNMAP;

    private readonly SafeFdHandle _fd;

    private MissingPages(SafeFdHandle fd, string owner)
    {
        _fd = fd;
        Owner = owner;
    }

    /// <summary>Whose memory it is, for messages ("process 123", "a child of process 123").</summary>
    public string Owner { get; }

    internal int Fd => _fd.Fd;

    /// <summary>Makes one in a stopped process (which must still hold CAP_SYS_PTRACE: the kernel's own accesses are served too).</summary>
    public static MissingPages Create(int pid, RemoteCalls calls) =>
        new(RemoteUserfaultfd.Make(pid, calls, kernelFaults: true, Features, "EVENT_FORK|REMAP|REMOVE|UNMAP").Handle, $"process {pid}");

    /// <summary>The userfaultfd a fork message brought (the kernel put it in amber's fd table): from now on this object's.</summary>
    public static MissingPages Adopt(int forkFd, string parent) => new(new SafeFdHandle(forkFd), $"a child of {parent}");

    /// <summary>Serves the missing pages of [start, end) from now on.</summary>
    public unsafe void Register(ulong start, ulong end)
    {
        var register = new UffdioRegister { start = start, len = end - start, mode = Interop.UFFDIO_REGISTER_MODE_MISSING };
        if (Interop.Ioctl(Fd, Interop.UFFDIO_REGISTER, &register) < 0)
            Errnos.Throw("ioctl(UFFDIO_REGISTER, MISSING)", $"{start:x}-{end:x} of {Owner}");
    }

    /// <summary>
    /// Places <paramref name="data"/> at <paramref name="address"/> (whole pages) and wakes whoever
    /// waits there. Pages already there (placed before, or written by the process after a drop) are
    /// left as they are. A range across two mappings (the process split one, by mprotect say) is
    /// placed in parts. With <paramref name="skipUnmapped"/>, a page in no registered mapping is
    /// passed over (counted in Done) rather than ending the copy.
    /// </summary>
    public unsafe FillOutcome Copy(ulong address, ReadOnlySpan<byte> data, bool skipUnmapped = false)
    {
        fixed (byte* source = data)
        {
            ulong from = (ulong)source;
            return Fill("ioctl(UFFDIO_COPY)", address, (ulong)data.Length, skipUnmapped, (at, size) =>
            {
                var copy = new UffdioCopy { dst = address + at, src = from + at, len = size };
                return (Interop.Ioctl(Fd, Interop.UFFDIO_COPY, &copy) == 0, copy.copy);
            });
        }
    }

    /// <summary>
    /// Maps the zero page at [address, address + length) (memory that held nothing), waking whoever
    /// waits there; pages already there are left as they are, a range across mappings done in parts.
    /// </summary>
    public unsafe FillOutcome Zero(ulong address, ulong length) =>
        Fill("ioctl(UFFDIO_ZEROPAGE)", address, length, skipUnmapped: false, (at, size) =>
        {
            var zero = new UffdioZeropage { start = address + at, len = size };
            return (Interop.Ioctl(Fd, Interop.UFFDIO_ZEROPAGE, &zero) == 0, zero.zeropage);
        });

    /// <summary>
    /// Fills [address, address + length) with <paramref name="fill"/> (given an offset into the range
    /// and a length: whether it all went, and how many bytes it did if not), going on past pages
    /// already there, and in parts across mappings: the kernel refuses (ENOENT) a range that is not
    /// all in one, so a refused range is halved until its first part goes or is one page.
    /// </summary>
    private FillOutcome Fill(string call, ulong address, ulong length, bool skipUnmapped, Func<ulong, ulong, (bool Ok, long Done)> fill)
    {
        ulong done = 0, limit = length;
        while (done < length)
        {
            ulong size = Math.Min(limit, length - done);
            var (ok, part) = fill(done, size);
            int errno = ok ? 0 : Marshal.GetLastPInvokeError();
            if (ok || part > 0)
            {
                done += ok ? size : (ulong)part; // part of it: the rest goes on from there
                limit = length;
                continue;
            }
            if (errno == Errnos.ENOENT && size > Page.Size)
            {
                limit = Math.Max(Page.Size, size / 2 / Page.Size * Page.Size);
                continue;
            }
            if (errno == Errnos.ENOENT && skipUnmapped)
            {
                done += Page.Size;
                limit = length;
                continue;
            }
            if (Stop(errno, call, address + done, done) is { } stop)
                return stop;
            Wake(address + done, Page.Size); // there already: someone may wait on it all the same
            done += Page.Size;
        }
        return new FillOutcome(length, false, false);
    }

    /// <summary>Null for EEXIST (the page is there: skip it); the outcome for a changing or vanished mm; throws for anything else.</summary>
    private FillOutcome? Stop(int errno, string call, ulong at, ulong done) => errno switch
    {
        Errnos.EEXIST => null,
        Errnos.EAGAIN => new FillOutcome(done, true, false),
        Errnos.ENOENT => new FillOutcome(done, false, false, Unmapped: true),
        Errnos.ESRCH => new FillOutcome(done, false, true),
        _ => throw new KernelCallException(call, $"{at:x} of {Owner}", errno),
    };

    /// <summary>Wakes whoever waits on [address, address + length).</summary>
    public unsafe void Wake(ulong address, ulong length)
    {
        var range = new UffdioRange { start = address, len = length };
        if (Interop.Ioctl(Fd, Interop.UFFDIO_WAKE, &range) < 0 && Marshal.GetLastPInvokeError() is not (Errnos.ESRCH or Errnos.ENOENT))
            Errnos.Throw("ioctl(UFFDIO_WAKE)", $"{address:x} of {Owner}");
    }

    /// <summary>The messages waiting, up to the room given (none: 0, it does not block).</summary>
    public unsafe int ReadEvents(Span<UserfaultEvent> into)
    {
        Span<UffdMsg> messages = stackalloc UffdMsg[Math.Min(into.Length, 64)];
        nint n;
        fixed (UffdMsg* m = messages)
            n = Interop.Read(Fd, (byte*)m, (nuint)(messages.Length * UffdMsg.Size));
        if (n < 0)
        {
            int errno = Marshal.GetLastPInvokeError();
            if (errno is Errnos.EAGAIN or Errnos.EINTR)
                return 0;
            Errnos.Throw("read(userfaultfd)", Owner);
        }
        int count = (int)n / UffdMsg.Size;
        for (int i = 0; i < count; i++)
        {
            var m = messages[i];
            into[i] = m.evt switch
            {
                Interop.UFFD_EVENT_PAGEFAULT => new UserfaultEvent(UserfaultKind.PageFault, m.arg1 & ~(ulong)(Page.Size - 1)),
                Interop.UFFD_EVENT_FORK => new UserfaultEvent(UserfaultKind.Fork, 0, ForkFd: (int)(uint)m.arg0),
                Interop.UFFD_EVENT_REMAP => new UserfaultEvent(UserfaultKind.Remap, m.arg0, m.arg1, m.arg2),
                Interop.UFFD_EVENT_REMOVE => new UserfaultEvent(UserfaultKind.Remove, m.arg0, Length: m.arg1 - m.arg0),
                Interop.UFFD_EVENT_UNMAP => new UserfaultEvent(UserfaultKind.Unmap, m.arg0, Length: m.arg1 - m.arg0),
                _ => throw new InvalidDataException($"read(userfaultfd) of {Owner}: an event amber did not ask for (0x{m.evt:x})"),
            };
        }
        return count;
    }

    /// <summary>
    /// Waits up to <paramref name="timeoutMs"/> (-1: for ever) for a message on any of
    /// <paramref name="sources"/>; marks in <paramref name="ready"/> those that have one (or whose
    /// process is gone).
    /// </summary>
    public static unsafe bool Wait(IReadOnlyList<MissingPages> sources, Span<bool> ready, int timeoutMs)
    {
        Span<Pollfd> polls = sources.Count <= 64 ? stackalloc Pollfd[sources.Count] : new Pollfd[sources.Count];
        for (int i = 0; i < sources.Count; i++)
            polls[i] = new Pollfd { fd = sources[i].Fd, events = Interop.POLLIN };
        int n;
        fixed (Pollfd* p = polls)
            n = Interop.Poll(p, (nuint)polls.Length, timeoutMs);
        if (n < 0)
        {
            if (Marshal.GetLastPInvokeError() == Errnos.EINTR)
                return false;
            Errnos.Throw("poll", "userfaultfds");
        }
        for (int i = 0; i < sources.Count; i++)
            ready[i] = polls[i].revents != 0;
        return n > 0;
    }

    public void Dispose() => _fd.Dispose();
}
