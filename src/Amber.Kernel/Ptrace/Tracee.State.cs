using System.Runtime.InteropServices;
using Amber.Native;

namespace Amber.Kernel.Ptrace;

/// <summary>Register, signal-mask, rseq and siginfo access for a stopped tracee.</summary>
public sealed partial class Tracee
{
    // Room for any xstate layout (AMX makes it ~11 KiB); the kernel reports the real length.
    private const int MaxXStateBytes = 16384;

    public unsafe Registers GetRegisters()
    {
        UserRegs regs;
        var iov = new Iovec { iov_base = (nint)(&regs), iov_len = (nuint)UserRegs.Size };
        Request(Interop.PTRACE_GETREGSET, Interop.NT_PRSTATUS, (nint)(&iov), "PTRACE_GETREGSET(NT_PRSTATUS)");
        return new Registers(regs);
    }

    public unsafe void SetRegisters(Registers registers)
    {
        UserRegs regs = registers.Raw;
        var iov = new Iovec { iov_base = (nint)(&regs), iov_len = (nuint)UserRegs.Size };
        Request(Interop.PTRACE_SETREGSET, Interop.NT_PRSTATUS, (nint)(&iov), "PTRACE_SETREGSET(NT_PRSTATUS)");
    }

    public unsafe byte[] GetXState()
    {
        var buffer = new byte[MaxXStateBytes];
        fixed (byte* p = buffer)
        {
            var iov = new Iovec { iov_base = (nint)p, iov_len = (nuint)buffer.Length };
            Request(Interop.PTRACE_GETREGSET, Interop.NT_X86_XSTATE, (nint)(&iov), "PTRACE_GETREGSET(NT_X86_XSTATE)");
            return buffer.AsSpan(0, (int)iov.iov_len).ToArray();
        }
    }

    public unsafe void SetXState(byte[] xstate)
    {
        fixed (byte* p = xstate)
        {
            var iov = new Iovec { iov_base = (nint)p, iov_len = (nuint)xstate.Length };
            Request(Interop.PTRACE_SETREGSET, Interop.NT_X86_XSTATE, (nint)(&iov), "PTRACE_SETREGSET(NT_X86_XSTATE)");
        }
    }

    public unsafe ulong GetSignalMask()
    {
        ulong mask;
        Request(Interop.PTRACE_GETSIGMASK, sizeof(ulong), (nint)(&mask), "PTRACE_GETSIGMASK");
        return mask;
    }

    public unsafe void SetSignalMask(ulong mask)
    {
        Request(Interop.PTRACE_SETSIGMASK, sizeof(ulong), (nint)(&mask), "PTRACE_SETSIGMASK");
    }

    /// <summary>The thread's rseq registration, or null when it has none.</summary>
    public unsafe (ulong Address, uint Length, uint Flags, uint Signature)? GetRseqConfiguration()
    {
        RseqConfiguration conf;
        Request(Interop.PTRACE_GET_RSEQ_CONFIGURATION, RseqConfiguration.Size, (nint)(&conf), "PTRACE_GET_RSEQ_CONFIGURATION");
        return conf.rseq_abi_pointer == 0 ? null : (conf.rseq_abi_pointer, conf.rseq_abi_size, conf.flags, conf.signature);
    }

    /// <summary>The seccomp filters of the thread, oldest first (PTRACE_SECCOMP_GET_FILTER counts from the newest).</summary>
    public unsafe List<byte[]> GetSeccompFilters()
    {
        var filters = new List<byte[]>();
        for (int index = 0; ; index++)
        {
            CheckThread();
            long count = Interop.Ptrace(Interop.PTRACE_SECCOMP_GET_FILTER, Tid, index, 0);
            if (count < 0)
            {
                int errno = Marshal.GetLastPInvokeError();
                if (errno == Errnos.ENOENT || (errno == Errnos.EINVAL && index == 0))
                    break;
                throw new KernelCallException("PTRACE_SECCOMP_GET_FILTER", Name, errno);
            }
            var program = new byte[count * 8];
            fixed (byte* p = program)
            {
                if (Interop.Ptrace(Interop.PTRACE_SECCOMP_GET_FILTER, Tid, index, (nint)p) < 0)
                    throw new KernelCallException("PTRACE_SECCOMP_GET_FILTER", Name, Marshal.GetLastPInvokeError());
            }
            filters.Add(program);
        }
        filters.Reverse();
        return filters;
    }

    /// <summary>Queued signals with their siginfo, without dequeuing them (PTRACE_PEEKSIGINFO).</summary>
    public unsafe List<byte[]> PeekPendingSignals(bool shared)
    {
        var result = new List<byte[]>();
        var buffer = new byte[PeekSiginfoArgs.SiginfoSize * 32];
        ulong offset = 0;
        while (true)
        {
            var args = new PeekSiginfoArgs { off = offset, flags = shared ? (uint)Interop.PTRACE_PEEKSIGINFO_SHARED : 0, nr = 32 };
            long n;
            fixed (byte* p = buffer)
            {
                CheckThread();
                n = Interop.Ptrace(Interop.PTRACE_PEEKSIGINFO, Tid, (nint)(&args), (nint)p);
            }
            if (n < 0)
                throw new KernelCallException("PTRACE_PEEKSIGINFO", Name, Marshal.GetLastPInvokeError());
            for (int i = 0; i < n; i++)
                result.Add(buffer.AsSpan(i * PeekSiginfoArgs.SiginfoSize, PeekSiginfoArgs.SiginfoSize).ToArray());
            if (n < 32)
                return result;
            offset += (ulong)n;
        }
    }
}
