using System.Runtime.InteropServices;

namespace Amber.Native;

internal static partial class Interop
{
    internal const int PROT_NONE = 0;
    internal const int PROT_READ = 1;
    internal const int PROT_WRITE = 2;
    internal const int PROT_EXEC = 4;

    internal const int MAP_SHARED = 0x01;
    internal const int MAP_PRIVATE = 0x02;
    internal const int MAP_DROPPABLE = 0x08; // a mapping type of its own (6.11), not a flag to MAP_PRIVATE
    internal const int MAP_FIXED = 0x10;
    internal const int MAP_ANONYMOUS = 0x20;
    internal const int MAP_GROWSDOWN = 0x100;
    internal const int MAP_NORESERVE = 0x4000;
    internal const int MAP_POPULATE = 0x8000;
    internal const int MAP_FIXED_NOREPLACE = 0x100000;

    internal const int MREMAP_MAYMOVE = 1;
    internal const int MREMAP_FIXED = 2;

    internal const int MADV_RANDOM = 1;
    internal const int MADV_SEQUENTIAL = 2;
    internal const int MADV_DONTNEED = 4;
    internal const int MADV_DONTFORK = 10;
    internal const int MADV_MERGEABLE = 12;
    internal const int MADV_HUGEPAGE = 14;
    internal const int MADV_NOHUGEPAGE = 15;
    internal const int MADV_DONTDUMP = 16;
    internal const int MADV_WIPEONFORK = 18;
    internal const int MADV_POPULATE_WRITE = 23;
    internal const int MADV_GUARD_INSTALL = 102;
    internal const int MADV_GUARD_REMOVE = 103;

    internal const int MLOCK_ONFAULT = 1;

    internal const int F_GETFD = 1;
    internal const int F_SETFD = 2;
    internal const int F_DUPFD_CLOEXEC = 1030;
    internal const int FD_CLOEXEC = 1;

    internal const uint MFD_CLOEXEC = 1;

    /// <summary>madvise(2) on amber's own memory.</summary>
    [LibraryImport(Libc, EntryPoint = "madvise", SetLastError = true)]
    internal static unsafe partial int Madvise(void* address, nuint length, int advice);
}
