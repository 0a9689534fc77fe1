using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int MSG_PEEK = 2;
    internal const int MSG_DONTWAIT = 0x40;

    [LibraryImport(Libc, EntryPoint = "send", SetLastError = true)]
    internal static unsafe partial nint Send(int fd, byte* buffer, nuint length, int flags);

    /// <summary>send(2) of the first <paramref name="length"/> bytes of <paramref name="buffer"/>.</summary>
    [LibraryImport(Libc, EntryPoint = "send", SetLastError = true)]
    internal static partial nint Send(int fd, ReadOnlySpan<byte> buffer, nuint length, int flags);

    [LibraryImport(Libc, EntryPoint = "recv", SetLastError = true)]
    internal static unsafe partial nint Recv(int fd, byte* buffer, nuint length, int flags);

    [LibraryImport(Libc, EntryPoint = "recv", SetLastError = true)]
    internal static partial nint Recv(int fd, Span<byte> buffer, nuint length, int flags);
}
