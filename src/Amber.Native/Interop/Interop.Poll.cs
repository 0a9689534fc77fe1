using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const short POLLIN = 0x1;
    internal const short POLLERR = 0x8;
    internal const short POLLHUP = 0x10;
    internal const short POLLRDHUP = 0x2000;

    [LibraryImport(Libc, EntryPoint = "poll", SetLastError = true)]
    internal static unsafe partial int Poll(Pollfd* fds, nuint count, int timeoutMs);
}
