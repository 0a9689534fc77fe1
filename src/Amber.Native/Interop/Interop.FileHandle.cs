using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    /// <summary>open_by_handle_at(2): the file a file handle (e.g. from an inotify watch) names.</summary>
    [LibraryImport(Libc, EntryPoint = "open_by_handle_at", SetLastError = true)]
    internal static unsafe partial int OpenByHandleAt(int mountFd, byte* handle, int flags);
}
