using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Memory;

/// <summary>
/// Reads and writes another process's memory. Bulk reads use process_vm_readv (the fastest path);
/// /proc/PID/mem reaches what it cannot: PROT_NONE pages (FOLL_FORCE) and writes into read-only
/// mappings, which is how Amber writes code and data into a tracee.
/// </summary>
public sealed class RemoteMemory : IDisposable
{
    private readonly SafeFdHandle _mem;

    public RemoteMemory(int pid)
    {
        Pid = pid;
        _mem = Proc.ProcFile.Open(pid, "mem", write: true);
    }

    public int Pid { get; }

    /// <summary>Reads exactly <paramref name="destination"/>.Length bytes at <paramref name="address"/> through /proc/PID/mem.</summary>
    public unsafe void Read(ulong address, Span<byte> destination)
    {
        fixed (byte* p = destination)
        {
            int done = 0;
            while (done < destination.Length)
            {
                nint n = Interop.Pread(_mem.Fd, p + done, (nuint)(destination.Length - done), (long)address + done);
                if (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR)
                    continue;
                if (n <= 0)
                    throw new KernelCallException("pread /proc/PID/mem", $"process {Pid} at 0x{address + (ulong)done:x}", n == 0 ? Errnos.EIO : Marshal.GetLastPInvokeError());
                done += (int)n;
            }
        }
    }

    public unsafe void Write(ulong address, ReadOnlySpan<byte> source)
    {
        fixed (byte* p = source)
        {
            int done = 0;
            while (done < source.Length)
            {
                nint n = Interop.Pwrite(_mem.Fd, p + done, (nuint)(source.Length - done), (long)address + done);
                if (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR)
                    continue;
                if (n <= 0)
                    throw new KernelCallException("pwrite /proc/PID/mem", $"process {Pid} at 0x{address + (ulong)done:x}", n == 0 ? Errnos.EIO : Marshal.GetLastPInvokeError());
                done += (int)n;
            }
        }
    }

    public T Read<T>(ulong address) where T : unmanaged
    {
        Span<byte> buffer = stackalloc byte[System.Runtime.CompilerServices.Unsafe.SizeOf<T>()];
        Read(address, buffer);
        return MemoryMarshal.Read<T>(buffer);
    }

    public void Write<T>(ulong address, in T value) where T : unmanaged
    {
        Span<byte> buffer = stackalloc byte[System.Runtime.CompilerServices.Unsafe.SizeOf<T>()];
        MemoryMarshal.Write(buffer, in value);
        Write(address, buffer);
    }

    /// <summary>The most remote ranges one <see cref="ReadScattered"/> or <see cref="WriteScattered"/> call takes (IOV_MAX).</summary>
    public const int MaxScattered = 1024;

    /// <summary>
    /// Fills <paramref name="destination"/> with several remote ranges, one after the other, in one
    /// process_vm_readv (a checkpoint of scattered written pages makes one call, not one per page);
    /// what that cannot read (PROT_NONE) is read range by range like <see cref="ReadBulk"/>.
    /// </summary>
    public unsafe void ReadScattered(ReadOnlySpan<(ulong Address, int Length)> ranges, Span<byte> destination)
    {
        fixed (byte* p = destination)
            Scattered(ranges, p, destination.Length, write: false);
    }

    /// <summary>
    /// Writes <paramref name="source"/> into several remote ranges, one after the other, in one
    /// process_vm_writev (a restore of memory in many short pieces makes one call per thousand);
    /// what that cannot write (a mapping without write permission) is written range by range through
    /// /proc/PID/mem like <see cref="Write(ulong, ReadOnlySpan{byte})"/>.
    /// </summary>
    public unsafe void WriteScattered(ReadOnlySpan<(ulong Address, int Length)> ranges, ReadOnlySpan<byte> source)
    {
        fixed (byte* p = source)
            Scattered(ranges, p, source.Length, write: true);
    }

    /// <summary>
    /// One process_vm_readv of several remote ranges into <paramref name="destination"/>, and nothing
    /// more: how many bytes it read, from the start (it stops at the first page it cannot read).
    /// For copies that can be taken again where this one falls short: the pages of a process that runs.
    /// </summary>
    public unsafe long TryReadScattered(ReadOnlySpan<(ulong Address, int Length)> ranges, Span<byte> destination)
    {
        fixed (byte* p = destination)
            return Math.Max(0, Transfer(ranges, p, destination.Length, write: false, out _));
    }

    private unsafe void Scattered(ReadOnlySpan<(ulong Address, int Length)> ranges, byte* local, int localLength, bool write)
    {
        nint n = Transfer(ranges, local, localLength, write, out int total);
        if (n == total)
            return;
        // Short (a range it may not reach this way): the rest, range by range, from where it stopped.
        long done = Math.Max(0, (long)n);
        int at = 0;
        foreach (var (address, length) in ranges)
        {
            if (done < at + length)
            {
                int skip = (int)Math.Max(0, done - at);
                if (write)
                    Write(address + (ulong)skip, new ReadOnlySpan<byte>(local + at + skip, length - skip));
                else
                    ReadBulk(address + (ulong)skip, new Span<byte>(local + at + skip, length - skip));
            }
            at += length;
        }
    }

    /// <returns>What one process_vm_readv/writev of the ranges moved (of <paramref name="total"/>), or -1.</returns>
    private unsafe nint Transfer(ReadOnlySpan<(ulong Address, int Length)> ranges, byte* local, int localLength, bool write, out int total)
    {
        if (ranges.Length > MaxScattered)
            throw new ArgumentException($"{ranges.Length} ranges, more than {MaxScattered}", nameof(ranges));
        total = 0;
        var remote = stackalloc Iovec[ranges.Length];
        for (int i = 0; i < ranges.Length; i++)
        {
            remote[i] = new Iovec { iov_base = (nint)ranges[i].Address, iov_len = (nuint)ranges[i].Length };
            total += ranges[i].Length;
        }
        if (total > localLength)
            throw new ArgumentException($"{total} bytes of remote ranges, {localLength} here");
        var iov = new Iovec { iov_base = (nint)local, iov_len = (nuint)total };
        nint n;
        do
            n = write ? Interop.ProcessVmWritev(Pid, &iov, 1, remote, (ulong)ranges.Length, 0) : Interop.ProcessVmReadv(Pid, &iov, 1, remote, (ulong)ranges.Length, 0);
        while (n < 0 && Marshal.GetLastPInvokeError() == Errnos.EINTR);
        if (n < 0 && Marshal.GetLastPInvokeError() == Errnos.ESRCH)
            throw new TargetGoneException(Pid);
        return n;
    }

    /// <summary>
    /// Fills <paramref name="destination"/> from one contiguous remote range with process_vm_readv;
    /// falls back to /proc/PID/mem where the range is not readable (EFAULT: PROT_NONE).
    /// </summary>
    public unsafe void ReadBulk(ulong address, Span<byte> destination)
    {
        fixed (byte* p = destination)
        {
            int done = 0;
            while (done < destination.Length)
            {
                var local = new Iovec { iov_base = (nint)(p + done), iov_len = (nuint)(destination.Length - done) };
                var remote = new Iovec { iov_base = (nint)(address + (ulong)done), iov_len = (nuint)(destination.Length - done) };
                nint n = Interop.ProcessVmReadv(Pid, &local, 1, &remote, 1, 0);
                if (n > 0)
                {
                    done += (int)n;
                    continue;
                }
                int errno = Marshal.GetLastPInvokeError();
                if (n < 0 && errno == Errnos.EINTR)
                    continue;
                if (n < 0 && errno == Errnos.ESRCH)
                    throw new TargetGoneException(Pid);
                // EFAULT (or a short read ending at an unreadable page): /proc/PID/mem reads it.
                Read(address + (ulong)done, destination[done..]);
                return;
            }
        }
    }

    public void Dispose() => _mem.Dispose();
}
