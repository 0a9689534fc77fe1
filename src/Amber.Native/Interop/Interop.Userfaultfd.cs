namespace Amber.Native;

internal static partial class Interop
{
    // linux/userfaultfd.h of 6.7+ (the installed 6.1 headers lack WP_ASYNC).
    internal const int UFFD_USER_MODE_ONLY = 1;
    internal const ulong UFFD_API = 0xAA;
    internal const ulong UFFD_FEATURE_EVENT_FORK = 1UL << 1;
    internal const ulong UFFD_FEATURE_EVENT_REMAP = 1UL << 2;
    internal const ulong UFFD_FEATURE_EVENT_REMOVE = 1UL << 3;
    internal const ulong UFFD_FEATURE_EVENT_UNMAP = 1UL << 6;
    internal const ulong UFFD_FEATURE_WP_UNPOPULATED = 1UL << 13;
    internal const ulong UFFD_FEATURE_WP_ASYNC = 1UL << 15;

    internal const byte UFFD_EVENT_PAGEFAULT = 0x12;
    internal const byte UFFD_EVENT_FORK = 0x13;
    internal const byte UFFD_EVENT_REMAP = 0x14;
    internal const byte UFFD_EVENT_REMOVE = 0x15;
    internal const byte UFFD_EVENT_UNMAP = 0x16;

    /// <summary>_IOWR(0xAA, 0x3F, struct uffdio_api) = 0xc018aa3f.</summary>
    internal static ulong UFFDIO_API => IoWR(0xAA, 0x3F, (uint)UffdioApi.Size);

    internal const ulong UFFDIO_REGISTER_MODE_MISSING = 1UL << 0;
    internal const ulong UFFDIO_REGISTER_MODE_WP = 1UL << 1;

    /// <summary>_IOWR(0xAA, 0x00, struct uffdio_register) = 0xc020aa00.</summary>
    internal static ulong UFFDIO_REGISTER => IoWR(0xAA, 0x00, (uint)UffdioRegister.Size);

    /// <summary>_IOR(0xAA, 0x02, struct uffdio_range) = 0x8010aa02.</summary>
    internal static ulong UFFDIO_WAKE => IoR(0xAA, 0x02, (uint)UffdioRange.Size);

    /// <summary>_IOWR(0xAA, 0x03, struct uffdio_copy) = 0xc028aa03.</summary>
    internal static ulong UFFDIO_COPY => IoWR(0xAA, 0x03, (uint)UffdioCopy.Size);

    /// <summary>_IOWR(0xAA, 0x04, struct uffdio_zeropage) = 0xc020aa04.</summary>
    internal static ulong UFFDIO_ZEROPAGE => IoWR(0xAA, 0x04, (uint)UffdioZeropage.Size);

    internal static int Userfaultfd(int flags) =>
        (int)Syscall(SyscallNumbers.Userfaultfd, flags, 0, 0, 0, 0, 0);
}
