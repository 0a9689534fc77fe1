using System.Runtime.InteropServices;
using System.Text;
using Amber.Kernel.Files;

namespace Amber.Integration.Tests.Infrastructure;

/// <summary>A pipe the test holds both ends of: it writes into one, hands the other to a target.</summary>
public sealed partial class Pipe : IDisposable
{
    public Pipe()
    {
        var fds = new int[2];
        if (PipeNative(fds) != 0)
            throw new InvalidOperationException($"pipe failed: errno {Marshal.GetLastPInvokeError()}");
        ReadFd = fds[0];
        WriteFd = fds[1];
    }

    public int ReadFd { get; }

    public int WriteFd { get; }

    public void Write(string text)
    {
        var bytes = Encoding.ASCII.GetBytes(text);
        int done = 0;
        while (done < bytes.Length)
        {
            nint n = WriteNative(WriteFd, bytes.AsSpan(done), (nuint)(bytes.Length - done));
            if (n <= 0)
                throw new InvalidOperationException($"write to pipe failed: errno {Marshal.GetLastPInvokeError()}");
            done += (int)n;
        }
    }

    public void Dispose()
    {
        CloseNative(ReadFd);
        CloseNative(WriteFd);
    }

    [LibraryImport("libc", EntryPoint = "pipe2", SetLastError = true)]
    private static partial int Pipe2Native(Span<int> fds, int flags);

    private static int PipeNative(int[] fds) => Pipe2Native(fds, OpenFlags.CloseOnExec /* only handed over on purpose */);

    [LibraryImport("libc", EntryPoint = "write", SetLastError = true)]
    private static partial nint WriteNative(int fd, ReadOnlySpan<byte> buffer, nuint count);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int CloseNative(int fd);
}
